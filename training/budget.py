"""``TimeBudget``: the learning rate as a function of the wall clock, the stop on time, the final evaluation.

A Keras callback, the same in ``model.fit`` and in ``keras-vit train``'s distributed loop. Before each step
it sets the optimizer's learning rate from the *fraction of the budget spent*, not from a step count
planned in advance: a linear warmup over ``warmup_steps`` steps, then a cosine from ``peak`` down to
``floor`` that reaches the floor at the deadline. A machine that slows down (or speeds up) mid-run moves
the schedule with it, so the last step always trains at the floor. Planning from early steps went wrong on
a quiet 2-core machine: 20 calibration steps said 497 ms a step, the epochs then ran at 560-600 ms, and the
run hit its deadline 27 steps before its planned schedule reached the floor (issues 18 and 23).

The deadline is ``budget - reserve``: the reserve is the time the run needs after its last step (the
final evaluation and saves). It starts at ``reserve_s`` and grows to the longest epoch end seen (the
evaluation, checkpoint and history writes ``fit`` or the loop do there), so the final evaluation of a
run that stops mid-epoch still fits. A step is the last one when the next would end past the deadline;
it trains at the floor and the run stops after it (``model.stop_training``); ``fit`` then evaluates
``validation_data`` one last time. Should a step run so long that the deadline passes without warning,
one more step is taken, at the floor: the run may end one step late, never above the floor.

Limit: each process follows its own clock, so under ``MultiWorkerMirroredStrategy`` workers could decide
to stop after different steps (nothing agrees them yet): use a budget with one worker.

With ``directory``, the seconds spent are kept in ``directory/budget.json`` (every few seconds and at
every epoch end), so a run that is preempted and rerun continues the same budget and schedule rather
than starting a new one.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile(keras.optimizers.AdamW(1e-3), keras.losses.MeanSquaredError())
    >>> budget = TimeBudget(minutes=0.05, peak=1e-3, floor=1e-5)
    >>> _ = model.fit(np.ones((64, 4)), np.ones((64, 2)), epochs=10**6, batch_size=8, verbose=0, callbacks=[budget])
    >>> budget.stopped and budget.learning_rate == 1e-5   # stopped by the clock, at the floor
    True
"""

import json
import math
import os
import time

import keras

from keras_vit.atomic import atomic_write
from keras_vit.training.faults import writing

SAFETY = 0.03  # share of the budget kept free at its end (step and write-time jitter on a shared machine)
SAVE_EVERY_S = 5.0  # how often the seconds spent are written (a kill loses at most this much of the count)
WINDOW = 20  # step times kept for the median


def clock_learning_rate(peak: float, floor: float, fraction: float) -> float:
    """The cosine from ``peak`` (``fraction`` 0, the end of warmup) to ``floor`` (``fraction`` >= 1).

    Example:
        >>> [round(clock_learning_rate(1.0, 0.0, f), 3) for f in (0.0, 0.5, 1.0, 2.0)]
        [1.0, 0.5, 0.0, 0.0]
    """
    fraction = min(max(fraction, 0.0), 1.0)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * fraction))


def plan_total_steps(remaining_s: float, step_s: float, done_steps: int, steps_per_epoch: int, eval_s: float,
                     save_s: float, eval_every: int = 1, safety: float = 0.04) -> int:
    """An estimate of the total steps whose remaining steps, evaluations and saves fit in ``remaining_s``.

    Only reported (``keras-vit train`` prints it after calibration): the schedule follows the clock, not this.
    Every epoch end saves a checkpoint and, every ``eval_every`` epochs and at the last one, evaluates
    (``eval_s``) and may save the best model (a second ``save_s``); the final model is saved too.

    Example:
        >>> plan_total_steps(remaining_s=100.0, step_s=0.5, done_steps=20, steps_per_epoch=50,
        ...                  eval_s=4.0, save_s=0.5, eval_every=1)
        171
    """
    usable = remaining_s * (1.0 - safety) - save_s  # the final model.save
    total = done_steps + max(int(usable / max(step_s, 1e-9)), 1)
    for _ in range(20):  # fewer steps -> fewer epoch ends; converges in a few rounds
        epochs = math.ceil(total / steps_per_epoch)
        done_epochs = done_steps // steps_per_epoch
        ends = max(epochs - done_epochs, 1)
        evals = max(sum(1 for e in range(done_epochs + 1, epochs + 1) if e % eval_every == 0 or e == epochs), 1)
        steps = max(int((usable - ends * 2 * save_s - evals * eval_s) / max(step_s, 1e-9)), 1)
        if done_steps + steps == total:
            break
        total = done_steps + steps
    return max(total, done_steps + 1)


def global_step(callback) -> int:
    """Steps done: the loop's step counter (``params["step"]``) or ``model.fit``'s ``optimizer.iterations``."""
    counter = callback.params.get("step") if callback.params else None
    if counter is None:
        counter = optimizer_of(callback).iterations
    return int(counter.numpy() if hasattr(counter, "numpy") else counter)


def optimizer_of(callback):
    """The optimizer the loop passed (``params["optimizer"]``) or the compiled model's."""
    optimizer = callback.params.get("optimizer") if callback.params else None
    optimizer = optimizer or callback.model.optimizer
    return getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's rate is its inner one's


class TimeBudget(keras.callbacks.Callback):
    """Fits the learning rate to a wall-clock budget and stops the run when it is spent.

    The optimizer's learning rate must be a number (a variable Keras can assign), not a schedule.

    Args:
        minutes: the budget, counted from ``started``.
        peak: the learning rate at the end of warmup.
        floor: the learning rate of the last step.
        warmup_steps: steps of linear warmup from 0 (counted in steps: the first steps include compilation).
        started: ``time.time()`` when the budget began (default: when training begins), so that loading
            data and building the model can count too.
        reserve_s: seconds kept free after the last step before an epoch end has been timed.
        directory: a folder for ``budget.json`` (the seconds spent), so a rerun continues the budget.

    Attributes:
        learning_rate: the rate given to the latest step; ``stopped``: True once the clock stopped the run.
    """

    def __init__(self, minutes: float, peak: float, floor: float = 0.0, warmup_steps: int = 0, started=None,
                 reserve_s: float = 0.0, directory=None):
        super().__init__()
        if not minutes or minutes <= 0:
            raise ValueError(f"time_budget must be a positive number of minutes; received {minutes!r}.")
        if not 0 <= floor <= peak:
            raise ValueError(f"Need 0 <= floor <= peak; received floor={floor!r}, peak={peak!r}.")
        self.budget_s, self.peak, self.floor = float(minutes) * 60.0, float(peak), float(floor)
        self.warmup_steps, self.started, self.reserve_s = int(warmup_steps), started, float(reserve_s)
        self.directory = directory
        self.learning_rate, self.stopped, self.last_step, self._overdue = None, False, False, False
        self.notes = {}  # what else budget.json should say (keras-vit train's calibration)
        self._origin = self._warm_end = self._last_end = self._gap_from = None
        self._intervals, self._epoch_gap, self._saved = [], 0.0, 0.0

    # ------------------------------------------------------------------ the clock
    @property
    def path(self):
        return None if self.directory is None else os.path.join(self.directory, "budget.json")

    def spent(self, now=None) -> float:
        """Seconds of the budget spent (those of earlier runs in ``budget.json`` included)."""
        return (time.time() if now is None else now) - self._origin

    @property
    def reserve(self) -> float:
        """Seconds kept for what follows the last step: the longest epoch end seen (or ``reserve_s``) and a
        ``SAFETY`` share of the budget for the jitter of a shared machine."""
        return max(self.reserve_s, 1.2 * self._epoch_gap) + SAFETY * self.budget_s

    @property
    def step_s(self) -> float:
        """The median of the latest step times (0 before two steps have ended)."""
        times = sorted(self._intervals[-WINDOW:])
        return times[len(times) // 2] if times else 0.0

    def on_train_begin(self, logs=None):
        spent, self._warm_end = 0.0, None
        if self.path and os.path.isfile(self.path):  # a rerun: the same budget goes on
            with open(self.path, encoding="utf-8") as handle:
                state = json.load(handle)
            spent, self._warm_end = float(state.get("spent_s", 0.0)), state.get("warmup_end_s")
            self.reserve_s = max(self.reserve_s, float(state.get("reserve_s", 0.0)))  # what the end needed before
        self._origin = (self.started or time.time()) - spent
        self.stopped = self._overdue = False

    def on_train_batch_begin(self, batch, logs=None):
        step, now = global_step(self), time.time()
        if self._gap_from is not None:
            self._epoch_gap, self._gap_from = max(self._epoch_gap, now - self._gap_from), None
        deadline = self.budget_s - self.reserve
        ends_epoch = self.params.get("steps") is not None and batch + 1 == self.params["steps"]
        after = self.spent(now) + self.step_s * 2 + (self._epoch_gap if ends_epoch else 0.0)
        # The last step: the next one would end past the deadline, or the clock already ran out (a slow step).
        self.last_step = self._overdue or (bool(self._intervals) and after > deadline)
        if self.last_step:
            rate = self.floor
        elif step < self.warmup_steps:
            rate = self.peak * step / self.warmup_steps
        else:
            if self._warm_end is None:
                self._warm_end = self.spent(now)
            span = max(deadline - self._warm_end, 1e-9)
            rate = clock_learning_rate(self.peak, self.floor, (self.spent(now) + self.step_s - self._warm_end) / span)
        optimizer_of(self).learning_rate.assign(rate)
        self.learning_rate = rate

    def on_train_batch_end(self, batch, logs=None):
        now = time.time()
        if self._last_end is not None:
            self._intervals.append(now - self._last_end)
            del self._intervals[:-WINDOW]
        self._last_end = now
        if self.last_step:
            self.stopped = True
            self.model.stop_training = True
        elif self.spent(now) + self.step_s > self.budget_s - self.reserve:
            self._overdue = True  # one more step, at the floor: the run never ends above it
        if now - self._saved >= SAVE_EVERY_S or self.stopped:
            self.save(now)

    def on_epoch_end(self, epoch, logs=None):
        # From the epoch's last step to the next one: evaluation, saves, history (what the last step needs after it).
        self._gap_from, self._last_end = self._last_end, None

    def save(self, now=None):
        """Writes the seconds spent to ``budget.json`` (chief only: the loop gives workers no directory)."""
        now = time.time() if now is None else now
        self._saved = now
        if self.path is None:
            return
        state = {"budget_s": self.budget_s, "spent_s": round(self.spent(now), 3), "warmup_end_s": self._warm_end,
                 "reserve_s": round(self.reserve, 3), "step_s": round(self.step_s, 5), **self.notes}
        with writing(self.path):
            atomic_write(self.path, json.dumps(state, indent=2))

    def on_train_end(self, logs=None):
        self.save()

    def summary(self, steps: int) -> dict:
        """How the run kept its budget, for ``summary.json``."""
        return {**self.notes, "budget_s": self.budget_s, "steps_done": steps, "stopped_by_deadline": self.stopped,
                "last_learning_rate": self.learning_rate, "step_s": round(self.step_s, 5),
                "reserve_s": round(self.reserve, 3), "seconds_at_stop": round(self.spent(), 3)}


class Calibration(keras.callbacks.Callback):
    """``keras-vit train``'s first measurement of a budgeted run: what the end of the run will cost.

    After ``steps`` steps (the first compiles) it times one checkpoint save (``save(step)``, the run's own,
    finite-weights guard included) and an evaluation of two batches (``evaluate(batches)``), sets the
    budget's reserve to the full evaluation and three saves (checkpoint, best and final model), and
    prints the estimate. Until the first epoch end is timed that reserve is what keeps the final
    evaluation inside the budget.
    """

    def __init__(self, budget: TimeBudget, steps: int, save, evaluate, eval_batches: int):
        super().__init__()
        if steps < 3:
            raise ValueError(f"calibration_steps must be at least 3 (one compiles, two are timed); received {steps}.")
        self.budget, self.steps, self.save, self.evaluate = budget, steps, save, evaluate
        self.eval_batches = eval_batches
        self._begin = None

    def on_train_begin(self, logs=None):
        self._begin = time.time()

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self)
        if step == 1:
            self.budget.notes["compile_s"] = round(time.time() - self._begin, 3)
        if step != self.steps or "eval_s" in self.budget.notes:
            return
        t0 = time.time()
        self.save(step)
        save_s = time.time() - t0
        eval_s = 0.0
        if self.eval_batches:
            self.evaluate(1)  # traces the evaluation step
            t0 = time.time()
            self.evaluate(min(2, self.eval_batches))
            pair = time.time() - t0
            per_batch = min(pair / 2, self.budget.step_s / 2)  # a forward pass is ~1/3 of a training step
            eval_s = pair + max(self.eval_batches - 2, 0) * per_batch
        self.budget.reserve_s = eval_s + 3 * save_s
        spent, steps_per_epoch = self.budget.spent(), self.params.get("steps") or 1
        estimate = plan_total_steps(self.budget.budget_s - spent, max(self.budget.step_s, 1e-6), step,
                                    steps_per_epoch, eval_s, save_s, self.params.get("eval_every", 1))
        self.budget.notes.update(calibration_steps=self.steps, eval_s=round(eval_s, 3), save_s=round(save_s, 3),
                                 step_s_at_calibration=round(self.budget.step_s, 5), total_steps=estimate)
        print(f"time budget: {self.budget.budget_s / 60:g} min; compile {self.budget.notes.get('compile_s', 0):.1f} "
              f"s, {self.budget.step_s * 1000:.0f} ms/step, evaluation ~{eval_s:.1f} s, save {save_s:.2f} s -> about "
              f"{estimate} steps at this speed; the learning rate follows the clock to reach its floor at "
              f"{self.budget.budget_s - self.budget.reserve:.0f} s", flush=True)
        self.budget.save()
