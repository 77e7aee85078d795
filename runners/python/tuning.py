"""How the search proposes each candidate's next configuration (harness.run_search runs the trials).

RandomProposer draws from the spaces at random; OptunaProposer runs one Optuna study per candidate
(TPE, seeded per candidate) whose median pruner can stop a trial between its cross-validation folds.
Both see the same trials in the same round-robin order under the same budget; the first trial of every
candidate is its fixed parameters alone (the defaults), scored outside any sampler's choice.
"""

import json

# draws of an already tried configuration before a candidate counts as exhausted
MAX_REDRAWS = 20


class TrialPruned(Exception):
    """Raised by a trial's reporter when the pruner stops it; `partial` is its score so far."""

    def __init__(self, partial):
        super().__init__("pruned")
        self.partial = partial


def params_key(params):
    import harness as H

    return json.dumps(H.to_jsonable(params), sort_keys=True)


class RandomProposer:
    name = "random"

    def start(self, state):
        pass

    def next(self, state):
        """(params, handle) for the next trial, or None when every draw was tried before. A space that
        cannot be sampled raises ValueError."""
        import harness as H

        for _ in range(MAX_REDRAWS):
            drawn = {**state["params"], **H.sample_space(state["rng"], state["space"])}
            if params_key(drawn) not in state["seen"]:
                return drawn, None
        return None

    def reporter(self, state, handle):
        return None

    def settle(self, state, handle, trial, reporter):
        pass


def distributions(space):
    """The contract's ParamSpace entries as Optuna distributions (None is a valid choice)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, s in space.items():
        kind = s.get("type") if isinstance(s, dict) else None
        try:
            if kind == "int":
                lo, hi = sorted((int(s["low"]), int(s["high"])))
                out[name] = IntDistribution(lo, hi)
            elif kind in ("float", "log"):
                lo, hi = sorted((float(s["low"]), float(s["high"])))
                out[name] = FloatDistribution(lo, hi, log=kind == "log")
            elif kind == "choice" and s.get("values"):
                out[name] = CategoricalDistribution(list(s["values"]))
            else:
                raise ValueError("unknown type")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"space entry '{name}' is not a valid range: {s!r} ({e})") from None
    return out


class OptunaProposer:
    name = "tpe"

    def __init__(self, greater_is_better, n_iter):
        import optuna

        # optuna logs each trial; the harness reports trials itself
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.logging.disable_default_handler()
        self.optuna = optuna
        self.direction = "maximize" if greater_is_better else "minimize"
        # TPE models the scores once a few random trials exist; searches here are short
        self.startup = max(2, min(10, n_iter // 3))

    def start(self, state):
        """One study per candidate. A space Optuna cannot take is remembered: the defaults' trial still
        runs, and the next proposal raises it."""
        optuna = self.optuna
        state["study"], state["outcomes"] = None, {}
        try:
            state["distributions"] = distributions(state["space"])
        except ValueError as e:
            state["space_error"] = str(e)
            return
        state["study"] = optuna.create_study(
            direction=self.direction,
            sampler=optuna.samplers.TPESampler(seed=state["seed"], n_startup_trials=self.startup),
            # a trial stops once its running score is below the median of earlier trials' at that fold
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )

    def next(self, state):
        from optuna.trial import TrialState

        if state.get("space_error"):
            raise ValueError(state["space_error"])
        study = state["study"]
        for _ in range(MAX_REDRAWS):
            trial = study.ask(state["distributions"])
            drawn = {**state["params"], **trial.params}
            key = params_key(drawn)
            if key not in state["seen"]:
                return drawn, trial
            # a repeat is not run again: the study hears the earlier outcome and proposes anew
            outcome = state["outcomes"].get(key)
            if outcome is not None and outcome[0] == "complete":
                study.tell(trial, outcome[1])
            else:
                study.tell(trial, state=TrialState.PRUNED if outcome and outcome[0] == "pruned" else TrialState.FAIL)
        return None

    def reporter(self, state, handle):
        if handle is None:
            # the defaults' trial: its fold scores are kept for the pruner's medians, it is never stopped
            values = {}

            def record(step, value):
                values[int(step)] = float(value)

            record.values = values
            return record

        def report(step, value):
            handle.report(float(value), int(step))
            if handle.should_prune():
                raise TrialPruned(float(value))

        return report

    def settle(self, state, handle, trial, reporter):
        from optuna.trial import TrialState, create_trial

        study = state.get("study")
        if study is None:
            return
        if handle is None:
            if trial["score"] is not None:
                # the defaults are no point of the space: the study learns their score, not their place
                study.add_trial(
                    create_trial(params={}, distributions={}, value=trial["score"], intermediate_values=dict(reporter.values))
                )
            return
        key = params_key(trial["params"])
        if trial.get("pruned"):
            study.tell(handle, state=TrialState.PRUNED)
            state["outcomes"][key] = ("pruned", None)
        elif trial["score"] is None:
            study.tell(handle, state=TrialState.FAIL)
            state["outcomes"][key] = ("failed", None)
        else:
            study.tell(handle, trial["score"])
            state["outcomes"][key] = ("complete", trial["score"])
