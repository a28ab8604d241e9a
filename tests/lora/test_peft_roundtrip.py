"""A LoRA trained by peft, through codec, store and PEFT folder, loads back with identical logits."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora import AdapterMetadata, decode_adapter, encode_adapter, export_peft, import_peft
from flb_dapp.storage.local import LocalStore
from flb_dapp.training.peft_io import extract_adapter, load_adapter_weights

CLIENT = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"


def tiny_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        initializer_range=0.2,
        tie_word_embeddings=True,
    )


def lora_config() -> LoraConfig:
    return LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type="CAUSAL_LM"
    )


@pytest.fixture(scope="module")
def trained() -> dict[str, object]:
    """A tiny Llama, a LoRA trained on it for a few steps, and the trained model's logits."""
    torch.manual_seed(0)
    base = LlamaForCausalLM(tiny_config())
    base_state = copy.deepcopy(base.state_dict())
    model = get_peft_model(base, lora_config())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(1))
    model.train()
    for _ in range(5):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    probe = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(input_ids=probe).logits
    return {"model": model, "base_state": base_state, "probe": probe, "logits": logits}


def fresh_base(base_state: dict) -> LlamaForCausalLM:
    base = LlamaForCausalLM(tiny_config())
    base.load_state_dict(base_state)
    return base.eval()


def test_trained_adapter_round_trips_through_store_and_peft_folder(trained, tmp_path: Path) -> None:
    metadata = AdapterMetadata(
        base_model="tiny-llama-test",
        r=4,
        lora_alpha=8,
        target_modules=("q_proj", "v_proj"),
        round=1,
        client=CLIENT,
        num_samples=64,
    )
    adapter = extract_adapter(trained["model"], metadata)
    assert len(adapter.tensors) == 2 * 2 * 2  # 2 layers x (q, v) x (A, B)
    assert any(np.abs(v).sum() > 0 for k, v in adapter.tensors.items() if "lora_B" in k)  # it trained

    store = LocalStore(tmp_path / "store")
    cid = store.put_bytes(encode_adapter(adapter))
    fetched = decode_adapter(store.get_bytes(cid), expected_layout=adapter.layout())
    assert fetched.metadata == metadata

    folder = export_peft(fetched, tmp_path / "peft")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    loaded = PeftModel.from_pretrained(fresh_base(trained["base_state"]), folder).eval()
    with torch.no_grad():
        logits = loaded(input_ids=trained["probe"]).logits
    assert torch.equal(logits, trained["logits"])

    back = import_peft(folder)
    assert back.metadata == metadata
    assert all(np.array_equal(back.tensors[k], v) for k, v in adapter.tensors.items())


def test_load_into_a_live_model_gives_identical_logits(trained) -> None:
    adapter = extract_adapter(trained["model"])
    assert adapter.metadata.target_modules == ("q_proj", "v_proj") and adapter.metadata.r == 4
    model = get_peft_model(fresh_base(trained["base_state"]), lora_config()).eval()
    load_adapter_weights(model, adapter)
    with torch.no_grad():
        assert torch.equal(model(input_ids=trained["probe"]).logits, trained["logits"])
    wrong = extract_adapter(trained["model"])
    del wrong.tensors[sorted(wrong.tensors)[0]]
    with pytest.raises(AdapterValidationError, match="missing LoRA key"):
        load_adapter_weights(model, wrong)


def test_a_plain_peft_folder_imports(trained, tmp_path: Path) -> None:
    trained["model"].save_pretrained(tmp_path / "saved")
    adapter = import_peft(tmp_path / "saved")
    assert adapter.metadata.r == 4 and adapter.metadata.lora_alpha == 8
    assert adapter.metadata.target_modules == ("q_proj", "v_proj")
    expected = extract_adapter(trained["model"])
    assert all(np.array_equal(adapter.tensors[k], v) for k, v in expected.tensors.items())


def test_a_pickled_peft_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    torch.save({"x": torch.zeros(1)}, tmp_path / "adapter_model.bin")
    with pytest.raises(AdapterValidationError, match=r"adapter_model\.bin \(a pickle\)"):
        import_peft(tmp_path)
