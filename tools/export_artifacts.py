"""Copy the compiled contract types from Ape's build folder into the package.

The services and the `flb` CLI deploy and call the contracts from these files, so they work from
an installed package without a Solidity compiler. `tests/chain/test_artifacts.py` fails when they
drift from a fresh `ape compile`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: `python tools/export_artifacts.py`

from flb_dapp.atomic import atomic_write_text  # noqa: E402

CONTRACTS = ("FLBCoordinator", "FLBRewardToken", "FLBSettlement")
KEEP = ("contractName", "sourceId", "abi", "deploymentBytecode", "runtimeBytecode", "userdoc", "devdoc")


def main() -> int:
    build = json.loads((ROOT / ".build" / "__local__.json").read_text())
    out = ROOT / "flb_dapp" / "chain" / "compiled"
    out.mkdir(parents=True, exist_ok=True)
    for name in CONTRACTS:
        contract_type = build["contractTypes"][name]
        slim = {key: contract_type[key] for key in KEEP if key in contract_type}
        atomic_write_text(out / f"{name}.json", json.dumps(slim, indent=1, sort_keys=True) + "\n")
        print(f"exported {name} -> {out / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
