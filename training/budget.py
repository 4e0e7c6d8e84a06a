"""``--time-budget``: fit the learning-rate schedule to wall-clock minutes, then stop on time.

The budget counts from the start of ``train()``: data loading, model building and XLA
compilation are inside it. The run goes through three phases:

1. **Calibration.** The first ``calibration_steps`` steps train normally on the linear
   warmup ramp (``peak * step / warmup_steps``; warmup is made at least as long as the
   calibration, so nothing the final schedule decides has been used yet). The first step
   (the compilation) is not timed; the others give the step time. At the end one
   checkpoint save and a one-batch evaluation are timed too.
2. **The plan.** Total steps ``T`` = what fits in the time left after reserving the
   evaluations the run will do, its epoch-end saves and a safety share; the schedule is
   then ``recipe.warmup_cosine(peak, warmup_steps, T, floor)``, whose warmup part is the
   ramp already used. It is fixed from here on and written to ``budget.json``.
3. **Training to ``T``**, ending with the evaluation. Should the machine slow down, the
   run also stops at the deadline (``budget - reserve``) and says so in the summary
   (``stopped_by_deadline``); the schedule then has not reached its floor.

The learning rate lives in the optimizer's variable and is assigned before each step
(``BudgetedSchedule.before_step``), so fixing the horizon after the step is compiled
needs no second compilation.

Limits: each process plans from its own clock, so under ``MultiWorkerMirroredStrategy`` the
workers could disagree on the total steps (nothing agrees them yet: use a budget with one
worker). A resumed run keeps the plan in ``budget.json``; its deadline counts from the restart.

Example:
    >>> plan_total_steps(remaining_s=100.0, step_s=0.5, done_steps=20, steps_per_epoch=50,
    ...                  eval_s=4.0, save_s=0.5, eval_every=1)
    171
"""

import dataclasses
import json
import math
import os
import time

SAFETY = 0.04  # share of the remaining time left unplanned (step-time jitter on a shared machine)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What calibration measured and what it decided (``budget.json``)."""

    budget_s: float
    calibration_steps: int
    compile_s: float
    step_s: float
    eval_s: float
    save_s: float
    elapsed_at_plan_s: float
    warmup_steps: int
    total_steps: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def plan_total_steps(remaining_s: float, step_s: float, done_steps: int, steps_per_epoch: int, eval_s: float,
                     save_s: float, eval_every: int = 1, safety: float = SAFETY) -> int:
    """The total step count whose remaining steps, evaluations and saves fit in ``remaining_s``.

    Every epoch end saves a checkpoint and, every ``eval_every`` epochs and at the last one,
    evaluates (``eval_s``) and may save the best model (a second ``save_s``); the final model is
    saved too. ``safety`` of the time is kept free.

    Returns:
        at least ``done_steps + 1``.
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


class BudgetedSchedule:
    """Drives one budgeted run: calibrates, plans, sets the learning rate, says when to stop.

    Args:
        budget_minutes: the wall-clock budget.
        started: ``time.time()`` at the start of the run (the budget includes what came before).
        peak: the peak learning rate; floor: the final one (``min_learning_rate``), used by the last step.
        warmup_steps: the configured warmup (raised to ``calibration_steps`` if shorter).
        calibration_steps: steps before the plan; the first (compiling) one is not timed.
    """

    def __init__(self, budget_minutes: float, started: float, peak: float, floor: float, warmup_steps: int,
                 calibration_steps: int = 20):
        if not budget_minutes or budget_minutes <= 0:
            raise ValueError(f"time_budget must be a positive number of minutes; received {budget_minutes!r}.")
        if calibration_steps < 3:
            raise ValueError(f"calibration_steps must be at least 3 (one compiles, two are timed); "
                             f"received {calibration_steps}.")
        self.budget_s = float(budget_minutes) * 60.0
        self.started = started
        self.peak, self.floor = float(peak), float(floor)
        self.calibration_steps = int(calibration_steps)
        self.warmup_steps = max(int(warmup_steps), self.calibration_steps)
        self.plan = None
        self.schedule = None
        self.stopped_by_deadline = False
        self._intervals, self._compile_s, self._last = [], 0.0, None

    @property
    def deadline(self) -> float:
        """``time.time()`` after which no training step starts (budget minus the final reserve)."""
        reserve = 0.0 if self.plan is None else self.plan.eval_s + self.plan.save_s * 3
        return self.started + self.budget_s - reserve

    def learning_rate(self, step: int) -> float:
        """The rate of step ``step`` (0-based): the warmup ramp until the plan, then the fixed schedule."""
        if self.schedule is not None:
            return float(self.schedule(step))
        return self.peak * min(step / self.warmup_steps, 1.0)

    def resume(self, directory: str, start_step: int) -> int:
        """Takes the plan of an interrupted run from ``directory/budget.json`` (its schedule must not change).

        Returns:
            an epoch bound for the training loop (the run stops by :meth:`after_step`).
        """
        plan = load_plan(directory) if start_step else None
        if plan is not None:
            self._fix(plan)
        return 2**31

    def before_step(self, optimizer, step: int) -> None:
        """Assigns the rate of ``step`` (0-based) to the optimizer's learning-rate variable."""
        if self._last is None:
            self._last = time.time()
        optimizer.learning_rate.assign(self.learning_rate(step))

    def after_step(self, current: int, trainer, eval_ds, checkpoints, steps_per_epoch: int, eval_batches: int,
                   eval_every: int = 1, directory=None) -> bool:
        """Records the step that brought the count to ``current``; plans once calibrated.

        The step time is the interval between step ends (it includes the loop's own work); the
        first step's time is the compilation. At the end of calibration one checkpoint save and
        one evaluation of two batches are timed (the evaluation's tracing happens in a first,
        untimed batch), and :meth:`make_plan` fixes the schedule; ``directory`` receives ``budget.json``.

        Returns:
            True when the run should stop now (plan done or deadline passed).
        """
        now = time.time()
        if self.plan is None:
            if self._compile_s == 0.0:
                self._compile_s = now - self._last
            else:
                self._intervals.append(now - self._last)
            if current >= self.calibration_steps:
                t0 = time.time()
                checkpoints.save(current)
                save_s = time.time() - t0
                eval_s = 0.0
                if eval_ds is not None and eval_batches:
                    trainer.evaluate(eval_ds, steps=1)  # traces the evaluation step
                    t0 = time.time()
                    trainer.evaluate(eval_ds, steps=min(2, eval_batches))
                    pair = time.time() - t0
                    per_batch = min(pair / 2, self._median() / 2)  # a forward pass is ~1/3 of a training step
                    eval_s = pair + max(eval_batches - 2, 0) * per_batch
                self.make_plan(current, steps_per_epoch, eval_s, save_s, eval_every)
                if directory is not None:
                    from keras_vit.atomic import atomic_write

                    atomic_write(os.path.join(directory, "budget.json"), self.plan.to_json())
                print(f"time budget: {self.budget_s / 60:g} min; compile {self._compile_s:.1f} s, "
                      f"{self.plan.step_s * 1000:.0f} ms/step, evaluation ~{eval_s:.1f} s, save {save_s:.2f} s "
                      f"-> {self.plan.total_steps} steps (warmup {self.plan.warmup_steps}), planned at "
                      f"{self.plan.elapsed_at_plan_s:.1f} s", flush=True)
                now = time.time()
        self._last = now
        if self.plan is not None and current >= self.plan.total_steps:
            return True
        if now >= self.deadline:
            self.stopped_by_deadline = True
            if self.plan is None:
                print(f"time budget: {self.budget_s / 60:g} min spent before the {self.calibration_steps} calibration "
                      f"steps ended (step {current}, compilation {self._compile_s:.1f} s); stopping untrained. "
                      f"Give a larger --time-budget or fewer --calibration-steps.", flush=True)
            return True
        return False

    def _median(self) -> float:
        times = sorted(self._intervals) or [self._compile_s]
        return times[len(times) // 2]

    def make_plan(self, done_steps: int, steps_per_epoch: int, eval_s: float, save_s: float,
                  eval_every: int = 1) -> Plan:
        """Fixes the total steps and the schedule from the median step time (robust to a busy core)."""
        step_s = self._median()
        elapsed = time.time() - self.started
        total = plan_total_steps(self.budget_s - elapsed, step_s, done_steps, steps_per_epoch, eval_s, save_s,
                                 eval_every)
        warmup = min(self.warmup_steps, total - 1)
        self._fix(Plan(self.budget_s, done_steps, round(self._compile_s, 3), round(step_s, 5), round(eval_s, 3),
                       round(save_s, 3), round(elapsed, 3), warmup, total))
        return self.plan

    def _fix(self, plan: Plan) -> None:
        from keras_vit.training import recipe

        self.plan = plan
        # the last step (0-based index total - 1) trains at the floor
        self.schedule = recipe.warmup_cosine(self.peak, plan.warmup_steps, max(plan.total_steps - 1, 1),
                                             self.floor)

    def summary(self, steps: int) -> dict:
        """The plan and how the run kept it, for ``summary.json``."""
        return {**(dataclasses.asdict(self.plan) if self.plan else {}), "steps_done": steps,
                "stopped_by_deadline": self.stopped_by_deadline,
                "last_learning_rate": self.learning_rate(max(steps - 1, 0)),
                "seconds_at_stop": round(time.time() - self.started, 3)}


def load_plan(directory: str):
    """The :class:`Plan` in ``directory/budget.json``, or ``None``."""
    path = os.path.join(directory, "budget.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return Plan(**json.load(handle))
