"""Prompt files (JSONL, Parquet), the prompt stream's order and resume, and the toy task."""

import json
from collections import Counter

import pytest

from algos.rewards import score
from conftest import one_line_error
from executor.data import Example, PromptStream, load_prompts
from executor.tiny_model import vocabulary
from executor.toy_task import toy_problems, write_toy_task


def write_lines(path, *lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---- JSONL ---------------------------------------------------------------------------------
def test_jsonl_rows_become_examples_in_file_order(tmp_path):
    path = write_lines(tmp_path / "p.jsonl",
                       json.dumps({"prompt": "3+4=", "answer": "7", "extra": 1}),
                       "",  # blank lines are skipped
                       json.dumps({"prompt": "What is 6 x 7?", "answer": 42}))
    assert load_prompts(path) == [Example("3+4=", "7", 0), Example("What is 6 x 7?", "42", 1)]


def test_chat_prompts_are_joined_and_kept(tmp_path):
    chat = [{"role": "system", "content": "Answer with a number."}, {"role": "user", "content": "2+2="}]
    path = write_lines(tmp_path / "chat.jsonl", json.dumps({"prompt": chat, "answer": "4"}))
    (example,) = load_prompts(path)
    assert example.prompt == "Answer with a number.\n2+2="
    assert example.messages == tuple(chat)


def test_custom_and_dotted_keys(tmp_path):
    # verl's GSM8K layout: the answer lives in reward_model.ground_truth.
    row = {"question": "1+1=", "reward_model": {"style": "rule", "ground_truth": "2"}}
    path = write_lines(tmp_path / "verl.jsonl", json.dumps(row))
    (example,) = load_prompts(path, prompt_key="question", answer_key="reward_model.ground_truth")
    assert (example.prompt, example.answer) == ("1+1=", "2")


def test_malformed_json_names_the_file_and_line(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", json.dumps({"prompt": "a", "answer": "1"}), "", '{"prompt": "b",')
    message = one_line_error(load_prompts, path)
    assert f"{path}:3" in message and "not valid JSON" in message


def test_a_line_that_is_not_an_object_is_rejected(tmp_path):
    path = write_lines(tmp_path / "list.jsonl", '["3+4=", "7"]')
    assert f"{path}:1" in one_line_error(load_prompts, path)


def test_missing_key_names_the_key_and_the_keys_present(tmp_path):
    path = write_lines(tmp_path / "keys.jsonl", json.dumps({"question": "3+4=", "solution": "7"}))
    message = one_line_error(load_prompts, path)
    assert "'prompt'" in message and "'question'" in message and "'solution'" in message
    message = one_line_error(lambda: load_prompts(path, prompt_key="question"))
    assert "'answer'" in message and "'solution'" in message


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_an_error(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    assert "no rows" in one_line_error(load_prompts, path)


@pytest.mark.parametrize("row, what", [
    ({"prompt": "", "answer": "1"}, "empty"),
    ({"prompt": 5, "answer": "1"}, "int"),
    ({"prompt": [{"role": "user"}], "answer": "1"}, "list"),
    ({"prompt": "1+1=", "answer": None}, "None"),
    ({"prompt": "1+1=", "answer": ["2", "two"]}, "['2', 'two']"),
])
def test_wrong_field_types_are_rejected(tmp_path, row, what):
    path = write_lines(tmp_path / "types.jsonl", json.dumps(row))
    message = one_line_error(load_prompts, path)
    assert f"{path}:1" in message and what in message


def test_missing_file_and_unknown_suffix(tmp_path):
    assert "not found" in one_line_error(load_prompts, tmp_path / "nope.jsonl")
    csv = tmp_path / "p.csv"
    csv.write_text("prompt,answer\n1+1=,2\n")
    assert ".parquet" in one_line_error(load_prompts, csv)


# ---- Parquet -------------------------------------------------------------------------------
def test_parquet_with_text_and_chat_prompts(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    chat = [{"role": "user", "content": "5+2="}]
    table = pa.Table.from_pylist([
        {"prompt": chat, "reward_model": {"ground_truth": "7"}},
        {"prompt": [{"role": "user", "content": "1+1="}], "reward_model": {"ground_truth": "2"}},
    ])
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    examples = load_prompts(path, answer_key="reward_model.ground_truth")
    assert [(e.prompt, e.answer, e.index) for e in examples] == [("5+2=", "7", 0), ("1+1=", "2", 1)]
    assert examples[0].messages == tuple(chat)
    message = one_line_error(lambda: load_prompts(path, answer_key="answer"))
    assert "row 0" in message and "'reward_model'" in message


def test_parquet_errors(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), empty)
    assert "no rows" in one_line_error(load_prompts, empty)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet")
    assert "not a readable Parquet file" in one_line_error(load_prompts, broken)


# ---- the stream ----------------------------------------------------------------------------
def examples(n):
    return [Example(f"{i}+0=", str(i), i) for i in range(n)]


def indices(batch):
    return [e.index for e in batch]


def test_each_epoch_visits_every_prompt_once_in_a_seeded_order():
    stream = PromptStream(examples(10), batch_size=5, seed=3)
    epochs = [sum((indices(stream.next_batch()) for _ in range(2)), []) for _ in range(3)]
    assert all(sorted(epoch) == list(range(10)) for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2]  # a fresh shuffle each epoch
    again = PromptStream(examples(10), batch_size=5, seed=3)
    assert sum((indices(again.next_batch()) for _ in range(2)), []) == epochs[0]
    other = PromptStream(examples(10), batch_size=5, seed=4)
    assert sum((indices(other.next_batch()) for _ in range(2)), []) != epochs[0]


def test_drop_last_keeps_batches_full_and_never_repeats_within_an_epoch():
    stream = PromptStream(examples(10), batch_size=4)
    batches = [stream.next_batch() for _ in range(4)]  # epoch 0: 2 batches (2 left over), epoch 1: 2
    assert [len(b) for b in batches] == [4, 4, 4, 4]
    for epoch in (batches[:2], batches[2:]):
        seen = sum((indices(b) for b in epoch), [])
        assert len(set(seen)) == 8
    assert stream.state_dict()["epoch"] == 1
    short = PromptStream(examples(10), batch_size=4, drop_last=False)
    sizes = [len(short.next_batch()) for _ in range(4)]
    assert sizes == [4, 4, 2, 4]


@pytest.mark.parametrize("drop_last", [True, False])
def test_resume_neither_skips_nor_repeats(drop_last):
    # The uninterrupted run.
    full = PromptStream(examples(11), batch_size=3, seed=7, drop_last=drop_last)
    reference = [indices(full.next_batch()) for _ in range(12)]
    for stop in (1, 3, 4, 7):  # inside an epoch and right at its end
        first = PromptStream(examples(11), batch_size=3, seed=7, drop_last=drop_last)
        before = [indices(first.next_batch()) for _ in range(stop)]
        state = json.loads(json.dumps(first.state_dict()))  # through a JSON checkpoint
        resumed = PromptStream(examples(11), batch_size=3, seed=0, drop_last=drop_last)  # the seed comes back too
        resumed.load_state_dict(state)
        after = [indices(resumed.next_batch()) for _ in range(12 - stop)]
        assert before + after == reference, stop


def test_resume_checks_the_prompts_and_the_position():
    stream = PromptStream(examples(6), batch_size=2)
    stream.next_batch()
    state = stream.state_dict()
    assert {"epoch", "offset", "seed"} <= set(state)
    changed = [Example("other", "1", i) for i in range(6)]
    assert "prompt file" in one_line_error(PromptStream(changed, batch_size=2).load_state_dict, state)
    assert "prompt file" in one_line_error(PromptStream(examples(7), batch_size=2).load_state_dict, state)
    assert "out of range" in one_line_error(PromptStream(examples(6), 2).load_state_dict, {**state, "offset": 9})


def test_batch_size_must_fit_the_prompts():
    assert "1 to 3" in one_line_error(lambda: PromptStream(examples(3), batch_size=4))
    assert "1 to 3" in one_line_error(lambda: PromptStream(examples(3), batch_size=0))


# ---- the toy task --------------------------------------------------------------------------
def test_toy_task_round_trips_through_load_prompts(tmp_path):
    path = write_toy_task(tmp_path / "toy" / "train.jsonl", n=120, seed=0)
    rows = load_prompts(path)
    assert len(rows) == 120
    for example in rows:
        a, b = int(example.prompt[0]), int(example.prompt[2])
        assert example.prompt == f"{a}+{b}=" and example.answer == str(a + b) and len(example.answer) == 1
    # Every answer 0-9 equally common (12 each), so no answer is a safe guess; most problems occur.
    assert Counter(e.answer for e in rows) == {str(s): 12 for s in range(10)}
    assert len(toy_problems()) == 55 and len({e.prompt for e in rows}) > 40


def test_toy_task_is_seeded_and_uses_only_the_tiny_vocabulary(tmp_path):
    one = write_toy_task(tmp_path / "a.jsonl", n=30, seed=1).read_text()
    assert one == write_toy_task(tmp_path / "b.jsonl", n=30, seed=1).read_text()
    assert one != write_toy_task(tmp_path / "c.jsonl", n=30, seed=2).read_text()
    known = set(vocabulary())
    assert all(c in known for e in load_prompts(tmp_path / "a.jsonl") for c in e.prompt + e.answer)
    assert "at least 1" in one_line_error(write_toy_task, tmp_path / "d.jsonl", 0)


def test_toy_answers_score_with_the_numeric_reward(tmp_path):
    rows = load_prompts(write_toy_task(tmp_path / "t.jsonl", n=5, seed=0))
    answers = [e.answer for e in rows]
    # What the tiny model emits: the digit, then its end token (decoded with special tokens kept).
    assert score("numeric", [a + "</s>" for a in answers], answers) == [1.0] * 5
    wrong = [str((int(a) + 1) % 10) + "</s>" for a in answers]
    assert score("numeric", wrong, answers) == [0.0] * 5
    assert score("numeric", ["77", "7+1=8"], ["7", "7"]) == [0.0, 0.0]  # more than the answer is wrong
