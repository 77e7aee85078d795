import type { MetricName } from "../../../src/schema/requirements.js";
import { better } from "../constraints.js";
import { stage, type GraphDeps } from "../deps.js";
import { fmt, oneLine } from "../format.js";
import { recipesFor } from "../knowledge/index.js";
import { METRIC_LABELS } from "../request/reading.js";
import type { Instructions, RankedCandidate, SelectInput } from "../agents/types.js";
import type { State } from "../state.js";

/** Chooses the candidate to build and writes the operation agent's instructions. */
export function selectNode(deps: GraphDeps) {
  return stage<State>(deps, "select", async (state) => {
    const input: SelectInput = {
      requirements: state.requirements!,
      plans: state.plans,
      executions: state.executions,
      verdicts: state.verdicts,
      dataPlans: state.dataPlans,
      chosenPlanId: state.approvedPlan ?? "best",
    };
    const instructions = preferRequested(await deps.agents.manager.select(input), input);
    return { instructions, notices: instructions.notes };
  });
}

type Pooled = RankedCandidate & { planId: string };
const ERROR_MAX = 200;

/**
 * The model the user asked for is the one built whenever it produced a cross-validated score, even when
 * another family scored a little better (which is said); when it produced none, why is said. Applied after
 * either engine's choice, so both keep the rule.
 */
export function preferRequested(instructions: Instructions, input: SelectInput): Instructions {
  const req = input.requirements;
  const families = recipesFor(req.task)?.families ?? [];
  const wanted = families.filter((f) => req.requested_models.some((k) => f.id === k || f.aliases.includes(k)));
  if (wanted.length === 0) return instructions;
  const familyOf = (c: RankedCandidate) => families.find((f) => c.id.endsWith(`:${f.id}`)) ?? families.find((f) => f.estimator === c.estimator);
  const pool: Pooled[] = input.executions
    .filter((e) => input.chosenPlanId === "best" || e.planId === input.chosenPlanId)
    .flatMap((e) => e.candidates.map((c) => ({ ...c, planId: e.planId })));
  // A requested family whose module is missing was replaced at planning (and said so): its stand-in counts.
  let asked = pool.filter((c) => wanted.includes(familyOf(c)!));
  let standIn = false;
  if (asked.length === 0) {
    const standIns = new Set(wanted.map((f) => f.substitute).filter((s): s is string => !!s));
    asked = pool.filter((c) => standIns.has(familyOf(c)?.id ?? ""));
    standIn = true;
  }
  if (asked.length === 0) return instructions;
  const metric = req.metric.name;
  const byScore = (a: Pooled, b: Pooled) => (better(metric, a.score, b.score) ? -1 : better(metric, b.score, a.score) ? 1 : 0);
  const scored = asked.filter((c) => c.score !== null).sort(byScore);
  const chosen = instructions.candidate;
  const requestedNames = wanted.map((f) => f.label).join(" or ") + (standIn ? ` (its stand-in here, since it is not installed)` : "");
  const label = METRIC_LABELS[metric as MetricName] ?? metric;
  if (scored.length === 0) {
    const why = asked.map((c) => `${c.label}: ${oneLine(c.error ?? "no score", ERROR_MAX)}`).join("; ");
    const note = `You asked for ${requestedNames}, but it produced no cross-validation score (${why}); building ${chosen.label} instead.`;
    return { ...instructions, notes: [...instructions.notes, note] };
  }
  if (asked.some((c) => c.id === chosen.id)) return instructions;
  const pick = scored[0];
  const rest = pool.filter((c) => c.score !== null && c !== pick).sort(byScore);
  const top = rest[0];
  const beaten = top && better(metric, top.score, pick.score);
  const note = beaten
    ? `${pick.label} scored ${label} ${fmt(pick.score)} in cross-validation; ${top.label} scored ${fmt(top.score)} but you asked for ${requestedNames}.`
    : `${pick.label} from ${pick.planId} scored ${label} ${fmt(pick.score)} in cross-validation; you asked for ${requestedNames}.`;
  const dataPlan = input.dataPlans.find((d) => d.planId === pick.planId);
  const strip = ({ planId: _p, ...c }: Pooled): RankedCandidate => c;
  return {
    planId: pick.planId,
    candidate: strip(pick),
    alternatives: rest.map(strip),
    dropColumns: dataPlan?.dropColumns ?? req.drop_columns,
    notes: [note],
  };
}


