"""Rule rewards on real response strings."""

import subprocess
import sys

import pytest

from algos import rewards
from algos.rewards import exact_reward, final_answer, format_reward, math_reward, numeric_reward, score
from conftest import one_line_error


# ---- numeric -------------------------------------------------------------------------------
@pytest.mark.parametrize("response, reference", [
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72"),
    ("#### 1,234", "1234"),
    ("So the total is $\\boxed{3.0}$.", "3"),
    ("The answer is 7.", "7"),
    ("She pays $18.00 in total.", "18"),
    ("That is 50% of the class.", "50"),
    ("x = -3", "-3"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("The probability is 3/4", "0.75"),
    ("\\boxed{-\\dfrac{1}{2}}", "-1/2"),
    ("\\boxed{\\text{12 cm}}", "12"),
    ("It costs 1\\,234 dollars", "1,234"),
    ("12.5", "12.50"),
    ("7", "Weng earns 12/60 = 0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = 10.\n#### 7"),
    ("<think>4 + 5 is 9, minus 2</think> 7", "7"),
    ("7</s>8+1=9", "7"),
    ("7", "7"),
])
def test_numeric_accepts_the_same_number_written_differently(response, reference):
    assert numeric_reward(response, reference) == 1.0


@pytest.mark.parametrize("response, reference", [
    ("I think 5, no wait, 6", "5"),             # the last number counts, not the first
    ("There is no number here.", "3"),
    ("<think>the answer is 7", "7"),             # reasoning cut off before </think>: no answer
    ("<think>7</think> so the answer is 8", "7"),  # numbers in the reasoning do not count
    ("\\boxed{42} but 41 is close", "41"),      # a boxed answer beats a later number
    ("####", "7"),
    ("3-5", "-5"),                               # a minus between digits is subtraction
    ("77", "7"),
    ("7", "not a number"),
    ("", "0"),
])
def test_numeric_rejects_wrong_or_missing_answers(response, reference):
    assert numeric_reward(response, reference) == 0.0


def test_final_answer_order_of_precedence():
    assert final_answer("first 3 \\boxed{4} then\n#### 5") == "4"
    assert final_answer("work 3 + 4\n#### 7\nextra text") == "7"
    assert final_answer("no box, no hashes: 9") == "no box, no hashes: 9"
    assert final_answer("\\boxed{\\frac{1}{2}} and \\boxed{3}") == "3"
    assert final_answer("\\boxed{\\frac{1") is None  # box cut off


def test_exact_is_the_strict_string_match():
    assert exact_reward(" 7 </s>", "7") == 1.0
    assert exact_reward("7.0", "7") == 0.0
    assert exact_reward("7 is it", "7") == 0.0


# ---- math-verify ---------------------------------------------------------------------------
@pytest.mark.parametrize("response, reference, expected", [
    ("The answer is \\boxed{42}.", "42", 1.0),
    ("<think>halve it</think> $\\boxed{\\frac{2}{4}}$", "\\frac{1}{2}", 1.0),
    ("so $\\boxed{0.5}$", "$\\frac{1}{2}$", 1.0),
    ("\\boxed{x \\cdot x}", "x^2", 1.0),  # a bare-LaTeX reference is read between $...$
    ("\\boxed{43}", "42", 0.0),
    ("<think>I believe it is 42", "42", 0.0),
    ("I have no idea.", "42", 0.0),
    ("\\boxed{", "1", 0.0),
    ("\\boxed{42}", "", 0.0),
    ("\\boxed{\\frac{1}{0}} $$$ \\left(", "}}{{", 0.0),
])
def test_math_reward(response, reference, expected):
    assert math_reward(response, reference) == expected


def test_math_reward_works_off_the_main_thread():
    # math_verify's timeouts use signal.alarm, which raises outside the main thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(math_reward, "\\boxed{\\frac{2}{4}}", "0.5").result() == 1.0


# ---- format --------------------------------------------------------------------------------
@pytest.mark.parametrize("response, expected", [
    ("<think>3 plus 4 is 7</think> 7", 1.0),
    (" <think>\nplan\n</think>\n\\boxed{42}</s>", 1.0),
    ("<think>reasoning</think>", 0.0),             # no answer after the thinking
    ("<think>  </think> 7", 0.0),                  # empty thinking
    ("7", 0.0),
    ("<think>never closed 7", 0.0),
    ("preamble <think>x</think> 7", 0.0),           # thinking must come first
    ("<think>a</think> 7 <think>b</think> 8", 0.0),  # one think block only
    ("<think>a <think> b</think> 7", 0.0),
])
def test_format_reward(response, expected):
    assert format_reward(response) == expected


# ---- registry and score() ------------------------------------------------------------------
def test_score_by_name_and_weighted_sums():
    responses = ["<think>2 and 2</think> \\boxed{4}", "\\boxed{4}", "<think>hmm</think> 5"]
    references = ["4", "4", "4"]
    assert score("numeric", responses, references) == [1.0, 1.0, 0.0]
    assert score("format", responses, references) == [1.0, 0.0, 1.0]
    assert score("math+format", responses, references) == [2.0, 1.0, 1.0]
    assert score("math + 0.1*format", responses, references) == pytest.approx([1.1, 1.0, 0.1])
    assert score("0.5*numeric+0.5*exact", ["4", "4.0"], ["4", "4"]) == [1.0, 0.5]
    assert score("numeric", [], []) == []


@pytest.mark.parametrize("name", ["accuracy", "math+", "", "math*0.1", "2**math", "Math"])
def test_unknown_reward_names_raise_one_line_naming_the_known_ones(name):
    message = one_line_error(score, name, ["1"], ["1"])
    assert all(known in message for known in ("numeric", "math", "format", "exact"))


def test_score_checks_the_lengths_agree():
    with pytest.raises(ValueError, match="2 responses but 1 references"):
        score("numeric", ["1", "2"], ["1"])


def test_every_rule_is_registered_once():
    assert set(rewards.RULES) == set(rewards.RuleReward)


def test_importing_rewards_loads_neither_math_verify_nor_torch():
    code = "import sys, algos.rewards; print('math_verify' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
