"""examples/minilm_trainer.py --model llama-tiny (examples/causal_lm.py): the callback finds the ticket,
prunes the tiny Llama within KV groups and training continues; the default stays MiniLM."""
import sys
from pathlib import Path

import torch
import transformers as T

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import minilm_trainer  # noqa: E402
from causal_lm import byte_dataset  # noqa: E402


def test_default_model_is_still_minilm():
    assert minilm_trainer.parse_args([]).model == "minilm"


def test_byte_dataset_pads_and_masks():
    data = byte_dataset(["ab", "abcdef"], max_length=4)
    assert data.tensors["input_ids"].tolist() == [[100, 101, 0, 0], [100, 101, 102, 103]]
    assert data.tensors["labels"][0].tolist() == [100, 101, -100, -100]


def test_llama_tiny_path_prunes_and_trains_on(tmp_path):
    torch.set_num_threads(1)
    argv = ["--model", "llama-tiny", "--limit", "96", "--epochs", "1", "--batch-size", "16", "--max-length", "24",
            "--check-every", "2", "--threshold", "1.0", "--window", "2", "--out", str(tmp_path)]
    verbosity = T.logging.get_verbosity()
    try:
        result = minilm_trainer.main(argv)
    finally:
        T.logging.set_verbosity(verbosity)  # main() quiets transformers for the whole process
    assert result["pruned"] and result["ticket_step"] == 4 and result["steps"] == 6
    assert result["params_end"] < result["params_start"]
    assert result["structure_before"] == [(8, 2, 112)] * 4
    assert result["structure_after"] == [(6, 2, 78)] * 4  # 3 of 4 query heads kept in each of the 2 KV groups
    assert result["sample"].startswith("This movie is")
