"""FLB: federated LoRA fine-tuning of language models, coordinated by an Ethereum smart contract."""

__version__ = "0.1.0"
