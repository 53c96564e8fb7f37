"""Fine-tuning by distillation: train a reshaped model (the *student*) to match the model it
came from (the *teacher*) on sample inputs, keeping its quantizers and pruned shapes.

The student runs as its JAX function (:func:`symbiote.ir.to_jax.to_jax`, over a leading
sample axis); the teacher's outputs are computed once, in onnxruntime
(:func:`symbiote.search.accuracy.outputs_of`), so any model onnxruntime runs can teach.
The loss per minibatch, averaged over the float outputs:

* every float output: the mean squared error divided by the teacher output's variance over
  the training samples (so outputs of different scales weigh alike);
* a *score* output (:func:`symbiote.search.measures.is_scores`) adds ``T^2 * KL(softmax(t/T)
  || softmax(s/T))`` averaged over positions (Hinton et al., 2015; ``T`` = ``temperature``).
  The KL term alone is blind to a shift of all of a position's scores (softmax ignores it),
  which lets outputs that are not class scores but pass ``is_scores`` (a transformer's
  hidden states) drift: the value term holds them;

and with ``labels`` (integer classes, one per position of the score output),
``alpha * cross-entropy(labels) + (1 - alpha) * distillation``. Integer and boolean outputs
do not enter the loss.

Adam (optax) with a linear warmup then a cosine decay from ``lr`` (or a constant rate),
gradients clipped to a global norm of :data:`CLIP_NORM`; minibatches of ``batch`` samples
drawn without replacement with ``jax.random.fold_in(PRNGKey(seed), step)``; one
jit-compiled step. The default rate (1e-3) recovers a pruned CNN in a few hundred steps; a
model that starts close to its teacher (a pruned transformer, fidelity 0.998) wants about
1e-4, since at 1e-3 it fits the training samples and drifts on others. The trained
parameters are written back with :func:`symbiote.ir.to_jax.with_params` (integer weights
re-quantized with their stored scales; shapes unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from symbiote.errors import SymbioteError
from symbiote.ir.graph import Graph

#: softmax temperature of the distillation loss on score outputs
TEMPERATURE = 2.0
#: global gradient norm the updates are clipped to
CLIP_NORM = 1.0
#: the cosine schedule warms up over the first 1/WARMUP_DIVISOR of the steps
WARMUP_DIVISOR = 10
SCHEDULES = ("cosine", "constant")


class FinetuneError(SymbioteError):
    """Fine-tuning was set up badly: mismatched models, bad data, bad settings."""


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 300
    lr: float = 1e-3
    batch: int = 32
    seed: int = 0
    alpha: float = 0.5               # weight of the label loss when labels are given
    temperature: float = TEMPERATURE
    schedule: str = "cosine"


@dataclass(frozen=True)
class Recovery:
    """The fine-tuning the search applies to each reshaped candidate before its exact check
    (``symbiote search --finetune-steps N``; ``steps == 0``: none), and to the channel
    knob's recovery probe (:func:`symbiote.search.knobs.channels.recovery_ratio`)."""

    steps: int = 0
    lr: float = 1e-3
    seed: int = 0

    @property
    def on(self) -> bool:
        return self.steps > 0

    def apply(self, student: Graph, teacher: Graph, feeds: Sequence[Mapping[str, np.ndarray]]) -> Graph:
        """``student`` fine-tuned by distillation from ``teacher`` on ``feeds`` (topped up:
        :func:`training_feeds`), label-free; the student itself when off."""
        if not self.on:
            return student
        return finetune(student, teacher, training_feeds(teacher, feeds, seed=self.seed), steps=self.steps,
                        lr=self.lr, seed=self.seed).graph


@dataclass(frozen=True)
class FinetuneResult:
    graph: Graph                     # the student with its trained weights
    losses: tuple[float, ...]        # the training loss at each step (before its update)
    config: FinetuneConfig
    samples: int                     # training samples
    labelled: bool                   # whether the label loss was mixed in

    def as_dict(self) -> dict[str, Any]:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (None, None)
        return {"steps": self.config.steps, "lr": self.config.lr, "batch": self.config.batch, "seed": self.config.seed,
                "alpha": self.config.alpha if self.labelled else None, "temperature": self.config.temperature,
                "schedule": self.config.schedule, "samples": self.samples, "labelled": self.labelled,
                "loss_first": first, "loss_last": last}


# ---------------------------------------------------------------- checks
def _io(values: Sequence[Any]) -> list[tuple[str, tuple | None, str]]:
    return [(v.name, None if v.shape is None else tuple(v.shape), str(v.dtype)) for v in values]


def _fmt(io: Sequence[tuple[str, tuple | None, str]]) -> str:
    return ", ".join(f"{n}{list(sh) if sh is not None else '[?]'}:{d}" for n, sh, d in io)


def check_pair(student: Graph, teacher: Graph) -> None:
    """Raise :class:`FinetuneError` unless both models take the same inputs and give the
    same outputs (names, shapes and dtypes, in order)."""
    for kind, s, t in (("inputs", _io(student.inputs), _io(teacher.inputs)),
                       ("outputs", _io(student.outputs), _io(teacher.outputs))):
        if s != t:
            raise FinetuneError(f"the student's {kind} ({_fmt(s)}) differ from the teacher's ({_fmt(t)}): "
                                "fine-tuning needs the same names, shapes and types")


def check_config(cfg: FinetuneConfig) -> None:
    """Raise :class:`FinetuneError` for settings out of range."""
    if cfg.steps < 1:
        raise FinetuneError(f"steps must be at least 1, not {cfg.steps}")
    if not cfg.lr > 0:
        raise FinetuneError(f"the learning rate must be positive, not {cfg.lr}")
    if cfg.batch < 1:
        raise FinetuneError(f"the batch must hold at least 1 sample, not {cfg.batch}")
    if not 0.0 <= cfg.alpha <= 1.0:
        raise FinetuneError(f"alpha (the label loss's weight) must be in [0, 1], not {cfg.alpha}")
    if not cfg.temperature > 0:
        raise FinetuneError(f"the temperature must be positive, not {cfg.temperature}")
    if cfg.schedule not in SCHEDULES:
        raise FinetuneError(f"schedule {cfg.schedule!r}: one of {', '.join(SCHEDULES)}")


# ---------------------------------------------------------------- targets and losses
@dataclass(frozen=True)
class Targets:
    """The teacher's outputs over the training samples (``outputs[o]``: [N, *shape]), which
    of them enter the loss and how (``kinds[o]``: "scores", "values" or None), each value
    output's variance, and the index of the output labels score (None: no labels)."""

    outputs: tuple[np.ndarray, ...]
    kinds: tuple[str | None, ...]
    variances: tuple[float, ...]
    labels: np.ndarray | None
    label_output: int | None


def output_kinds(names: Sequence[str], first: Sequence[np.ndarray]) -> tuple[str | None, ...]:
    """Per output: "scores" (:func:`~symbiote.search.measures.is_scores`), "values" (another
    float output) or None (not trainable against)."""
    from symbiote.search.measures import is_scores

    out: list[str | None] = []
    for n, x in zip(names, first):
        x = np.asarray(x)
        out.append("scores" if is_scores(x, n) else "values" if np.issubdtype(x.dtype, np.floating) else None)
    return tuple(out)


def targets(teacher: Graph, feeds: Sequence[Mapping[str, np.ndarray]], labels: Sequence[Any] | None = None) -> Targets:
    """The teacher's outputs on ``feeds`` in onnxruntime, stacked per output, with their kinds."""
    from symbiote.search.accuracy import outputs_of
    from symbiote.search.measures import score_output

    outs = outputs_of(teacher, feeds)
    names = [v.name for v in teacher.outputs]
    stacked = tuple(np.stack([np.asarray(o[i]) for o in outs]) for i in range(len(names)))
    kinds = output_kinds(names, outs[0])
    if not any(kinds):
        raise FinetuneError(f"the teacher has no float output to match ({', '.join(names)})")
    variances = tuple(float(np.var(np.asarray(a, np.float64))) if k else 1.0 for a, k in zip(stacked, kinds))
    lab = o = None
    if labels is not None:
        if len(labels) != len(feeds):
            raise FinetuneError(f"{len(labels)} labels for {len(feeds)} training samples")
        o = score_output(names, outs[0])
        positions = int(np.prod(stacked[o].shape[1:-1], dtype=np.int64))
        lab = np.stack([np.asarray(x).reshape(-1) for x in labels]).astype(np.int32)
        if lab.shape[1] != positions:
            raise FinetuneError(f"labels: {lab.shape[1]} per sample for {positions} predictions of output {names[o]!r}")
        if lab.min() < 0 or lab.max() >= stacked[o].shape[-1]:
            raise FinetuneError(f"labels must lie in [0, {stacked[o].shape[-1] - 1}] (the classes of output "
                                f"{names[o]!r}); they span [{lab.min()}, {lab.max()}]")
    return Targets(stacked, kinds, variances, lab, o)


def distill_loss(student: Sequence[Any], teacher: Sequence[Any], kinds: Sequence[str | None],
                 variances: Sequence[float], temperature: float):
    """The mean over trainable outputs of their distillation loss (see the module doc)."""
    import jax
    import jax.numpy as jnp

    terms = []
    for s, t, k, var in zip(student, teacher, kinds, variances):
        if k is None:
            continue
        d = jnp.asarray(s, jnp.float32) - jnp.asarray(t, jnp.float32)
        term = jnp.mean(d * d) / max(var, 1e-12)
        if k == "scores":
            s2 = jnp.reshape(s, (-1, s.shape[-1])).astype(jnp.float32) / temperature
            t2 = jnp.reshape(t, (-1, t.shape[-1])).astype(jnp.float32) / temperature
            kl = jnp.sum(jax.nn.softmax(t2, -1) * (jax.nn.log_softmax(t2, -1) - jax.nn.log_softmax(s2, -1)), -1)
            term = term + temperature ** 2 * jnp.mean(kl)
        terms.append(term)
    return sum(terms) / len(terms)


def label_loss(scores: Any, labels: Any):
    """Mean cross-entropy of ``scores`` [B, ..., C] against integer ``labels`` [B, positions]."""
    import jax.numpy as jnp
    import optax

    logits = jnp.reshape(scores, (-1, scores.shape[-1])).astype(jnp.float32)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, jnp.reshape(labels, (-1,))))


def optimizer(cfg: FinetuneConfig):
    """Adam after global-norm clipping; its rate rises linearly from 0 to ``cfg.lr`` over the
    first ``steps // WARMUP_DIVISOR`` steps (none under :data:`WARMUP_DIVISOR` steps, so the
    first step already learns) then decays by a cosine ("cosine"), or stays at ``cfg.lr``
    ("constant")."""
    import optax

    if cfg.schedule == "constant":
        return optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.adam(cfg.lr))
    rate = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.steps // WARMUP_DIVISOR, cfg.steps)
    return optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.adam(rate))


# ---------------------------------------------------------------- training
def _step_fn(fn: Callable, tg: Targets, cfg: FinetuneConfig, opt: Any, n: int) -> Callable:
    """The jit-compiled step ``(params, state, i, inputs) -> (params, state, loss)``."""
    import jax
    import jax.numpy as jnp

    from symbiote.ir.to_jax import over_samples

    batched = over_samples(fn)
    b = min(cfg.batch, n)
    key = jax.random.PRNGKey(cfg.seed)
    teacher = tuple(jnp.asarray(a) for a in tg.outputs)
    labels = None if tg.labels is None else jnp.asarray(tg.labels)

    def loss_fn(p, idx, inputs):
        outs = batched(p, *(x[idx] for x in inputs))
        loss = distill_loss(outs, [t[idx] for t in teacher], tg.kinds, tg.variances, cfg.temperature)
        if labels is not None:
            loss = cfg.alpha * label_loss(outs[tg.label_output], labels[idx]) + (1.0 - cfg.alpha) * loss
        return loss

    @jax.jit
    def step(p, state, i, inputs):
        idx = jax.random.choice(jax.random.fold_in(key, i), n, (b,), replace=False)
        loss, grads = jax.value_and_grad(loss_fn)(p, idx, inputs)
        updates, state = opt.update(grads, state, p)
        return jax.tree_util.tree_map(lambda a, u: a + u, p, updates), state, loss

    return step


def finetune(student: Graph, teacher: Graph, train_feeds: Sequence[Mapping[str, np.ndarray]], *,
             labels: Sequence[Any] | None = None, steps: int = 300, lr: float = 1e-3, batch: int = 32,
             seed: int = 0, alpha: float = 0.5, temperature: float = TEMPERATURE, schedule: str = "cosine",
             progress: Callable[[int, float], None] | None = None) -> FinetuneResult:
    """Train ``student``'s parameters to match ``teacher`` on ``train_feeds`` (one
    ``{input name: array}`` per sample, at the models' input shapes); ``labels``: per
    sample, its integer classes (mixed in with weight ``alpha``). ``progress(step, loss)``
    is called after each step (1-based). Returns the trained graph and the loss history."""
    import jax.numpy as jnp

    from symbiote.ir.to_jax import feeds_as_arrays, to_jax, with_params

    cfg = FinetuneConfig(int(steps), float(lr), int(batch), int(seed), float(alpha), float(temperature), schedule)
    check_config(cfg)
    check_pair(student, teacher)
    if not train_feeds:
        raise FinetuneError("no training samples")
    params, fn = to_jax(student)
    if not params:
        raise FinetuneError(f"the student {student.name!r} has no trainable weights")
    tg = targets(teacher, train_feeds, labels)
    inputs = tuple(jnp.asarray(a) for a in feeds_as_arrays(student, train_feeds))
    opt = optimizer(cfg)
    state = opt.init(params)
    step = _step_fn(fn, tg, cfg, opt, len(train_feeds))
    losses: list[float] = []
    for i in range(cfg.steps):
        params, state, loss = step(params, state, i, inputs)
        losses.append(float(loss))
        if progress is not None:
            progress(i + 1, losses[-1])
    if not np.all(np.isfinite(losses)):
        raise FinetuneError(f"the training loss became {losses[-1]} (not finite): lower the learning rate ({cfg.lr})")
    return FinetuneResult(with_params(student, params), tuple(losses), cfg, len(train_feeds), tg.labels is not None)


#: fewer training samples than this are topped up with seeded random inputs (see training_feeds)
MIN_TRAIN_SAMPLES = 64
#: the random top-up's seeds start here (disjoint from the calibration's and the evaluation's streams)
TRAIN_SEED_OFFSET = 2_000_003


def training_feeds(graph: Graph, feeds: Sequence[Mapping[str, np.ndarray]], minimum: int = MIN_TRAIN_SAMPLES,
                   seed: int = 0) -> list[Mapping[str, np.ndarray]]:
    """The feeds the search fine-tunes on: the calibration samples, topped up to ``minimum``
    with seeded random inputs (:func:`symbiote.search.accuracy.calibration_inputs`, seeds from
    ``seed + TRAIN_SEED_OFFSET``) when there are fewer; the evaluation samples are never used."""
    from symbiote.search.accuracy import calibration_inputs

    out = list(feeds)
    if len(out) < minimum:
        out += calibration_inputs(graph, None, minimum - len(out), seed=seed + TRAIN_SEED_OFFSET)
    return out
