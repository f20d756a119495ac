"""Bytes per GPU: ZeRO model states, Korthikanti activations, pipeline in-flight, the fit check."""

import pytest

from planner.cost_model import memory as mem
from planner.cost_model.costs import StageCost
from planner.errors import PlanError
from planner.hardware import GiB, gpu_by_name
from planner.models import ModelSpec
from planner.parallel import ParallelConfig

GB = 1e9


def gpt(h=4096, a=32, layers=4, vocab=51200):
    """A GPT-style layer as in Korthikanti et al.: MHA, GELU MLP of 4h."""
    return ModelSpec("gpt", hidden_size=h, num_layers=layers, num_heads=a, num_kv_heads=a,
                     intermediate_size=4 * h, vocab_size=vocab, mlp="gelu")


@pytest.mark.parametrize("zero,expected_gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_example_7_5b_on_64_gpus(zero, expected_gb):
    # Rajbhandari et al. 2020, Figure 1: 7.5B parameters, N_d = 64, K = 12.
    total = sum(mem.model_state_bytes(7.5e9, zero, 64).values()) / GB
    assert total == pytest.approx(expected_gb, abs=0.06)


def test_zero_bytes_per_parameter_formulas():
    n = 8
    per_param = {z: sum(mem.model_state_bytes(1.0, z, n).values()) for z in range(4)}
    assert per_param[0] == pytest.approx(16)
    assert per_param[1] == pytest.approx(4 + 12 / n)
    assert per_param[2] == pytest.approx(2 + 14 / n)
    assert per_param[3] == pytest.approx(16 / n)


def test_stage_params_whole_model_and_split():
    model = ModelSpec("m", 4096, 32, 32, 8, 14336, 128256)
    assert mem.stage_params(model, 1, 1) == model.num_params
    # four stages of 8 layers, each with a (vocab-parallel) embedding or head on its ends
    per_stage = mem.stage_params(model, 2, 4)
    assert per_stage < model.num_params / 4
    assert per_stage > 8 * model.params_per_layer / 2


class TestKorthikantiTable2:
    """Korthikanti et al. 2022, Table 2: activation bytes per layer (16-bit, with dropout)."""

    s, b, t = 2048, 2, 8

    def per_layer(self, **kw):
        model = gpt()
        kw.setdefault("dropout", True)
        kw.setdefault("flash_attention", False)
        return mem.activation_bytes_per_layer(model, self.s, self.b, **kw), model

    def test_no_parallelism(self):
        got, m = self.per_layer()
        sbh, a, h = self.s * self.b * m.hidden_size, m.num_heads, m.hidden_size
        assert got == pytest.approx(sbh * (34 + 5 * a * self.s / h))

    def test_tensor_parallel(self):
        got, m = self.per_layer(tp=self.t)
        sbh, a, h, t = self.s * self.b * m.hidden_size, m.num_heads, m.hidden_size, self.t
        assert got == pytest.approx(sbh * (10 + 24 / t + 5 * a * self.s / (h * t)))

    def test_tensor_and_sequence_parallel(self):
        got, m = self.per_layer(tp=self.t, sequence_parallel=True)
        sbh, a, h = self.s * self.b * m.hidden_size, m.num_heads, m.hidden_size
        assert got == pytest.approx(sbh / self.t * (34 + 5 * a * self.s / h))

    def test_selective_recompute(self):
        got, m = self.per_layer(tp=self.t, recompute="selective")
        sbh = self.s * self.b * m.hidden_size
        assert got == pytest.approx(sbh * (10 + 24 / self.t))
        got_sp, _ = self.per_layer(tp=self.t, recompute="selective", sequence_parallel=True)
        assert got_sp == pytest.approx(34 * sbh / self.t)

    def test_full_recompute_keeps_layer_input(self):
        got, m = self.per_layer(tp=self.t, recompute="full")
        assert got == pytest.approx(2 * self.s * self.b * m.hidden_size)

    def test_flash_attention_drops_the_score_term(self):
        flash, m = self.per_layer(flash_attention=True)
        assert flash == pytest.approx(34 * self.s * self.b * m.hidden_size)

    def test_no_dropout_saves_two_bytes(self):
        nodrop, m = self.per_layer(flash_attention=True, dropout=False)
        assert nodrop == pytest.approx(32 * self.s * self.b * m.hidden_size)


def test_first_pipeline_stage_holds_min_m_p_micro_batches():
    model = gpt(layers=8)
    par = ParallelConfig(pp=4, dp=1)
    one = mem.activation_bytes(model, par, 1024, micro_batches=1)
    assert mem.activation_bytes(model, par, 1024, micro_batches=16) == pytest.approx(4 * one)
    assert mem.activation_bytes(model, par, 1024, micro_batches=2) == pytest.approx(2 * one)
    assert mem.in_flight_micro_batches(16, 4) == 4 and mem.in_flight_micro_batches(3, 8) == 3


def test_usable_bytes_leave_a_reserve():
    gpu = gpu_by_name("a100-80gb")
    assert mem.usable_bytes(gpu) / GiB == pytest.approx(78.0)


def test_require_fits_names_need_capacity_and_biggest_parts():
    gpu = gpu_by_name("a100-80gb")
    cost = StageCost(time_parts={"compute": 1.0},
                     memory_parts={"weights": 40 * GiB, "optimizer": 100 * GiB, "activations": 11.2 * GiB})
    assert not mem.fits(cost, gpu)
    with pytest.raises(PlanError) as err:
        mem.require_fits(cost, gpu, "llama-2-70b training with tp1/pp1/dp8/zero0")
    text = str(err.value)
    assert "\n" not in text
    assert "151.2 GiB" in text and "a100-80gb has 80 GiB (78.0 usable)" in text
    assert text.index("optimizer") < text.index("weights")
    small = StageCost(time_parts={}, memory_parts={"weights": 10 * GiB})
    assert mem.fits(small, gpu)
    mem.require_fits(small, gpu, "anything")
