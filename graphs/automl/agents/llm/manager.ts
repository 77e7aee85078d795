import { basename } from "node:path";
import { quote } from "../../../../src/llm/prompts.js";
import { TASK_KINDS, harnessVariantOf, type Requirements } from "../../../../src/schema/requirements.js";
import { better } from "../../constraints.js";
import { recipesFor, type Family } from "../../knowledge/index.js";
import { fmt } from "../../format.js";
import { datasetQuestion, OfflineManagerAgent, targetChoices } from "../offline/manager.js";
import { variantQuestions } from "../offline/variants.js";
import { textFeatureColumns } from "../../data/profile.js";
import { exactColumn, resolveColumn, understand } from "../offline/prompt.js";
import type {
  Assessment,
  Conversation,
  DataProfile,
  ExecutionVerdict,
  ImplementationVerdict,
  Instructions,
  KnowledgeItem,
  ManagerAgent,
  ModelPlan,
  Plan,
  PlanExecution,
  PlanInput,
  Question,
  RankedCandidate,
  SelectInput,
  VerifyImplementationInput,
} from "../types.js";
import {
  AssessOutput,
  KnowledgeOutput,
  PlanOutput,
  QuestionOutput,
  SelectOutput,
  VerifyExecutionOutput,
  VerifyImplementationOutput,
} from "./schemas.js";
import {
  askJson,
  type Client,
  clip,
  clipAll,
  conversationForPrompt,
  isOutputError,
  modelKeys,
  nonNumericWishes,
  normaliseTask,
  orOffline,
  profileForPrompt,
  refusedKeys,
  requirementsForPrompt,
} from "./shared.js";

const OFF_TOPIC_HINT =
  'I build and deploy machine-learning models from your data. Try something like: "Build a model that predicts `price` in houses.csv, RMSE below 20000".';
const MAX_CHOICES = 25;
const MAX_INSIGHTS = 8;

export interface ManagerOptions {
  /** Upper bound on the number of plans written in parallel (P); the graph's count applies when lower. */
  plans?: number;
}

/**
 * The LLM manager: request verification, retrieval-augmented planning, execution verification,
 * selection and implementation verification. Every decision that numbers can make (scores, targets,
 * constraint checks) is made by the offline manager on real results; the LLM writes plans, judges what
 * numbers cannot, and explains.
 */
export class LlmManagerAgent implements ManagerAgent {
  private readonly offline = new OfflineManagerAgent();

  constructor(
    private readonly client: Client,
    private readonly options: ManagerOptions = {},
  ) {}

  // ------------------------------------------------------------------------------------------
  // Request verification
  // ------------------------------------------------------------------------------------------

  async assess(input: { conversation: Conversation; profile: DataProfile | null }): Promise<Assessment> {
    return orOffline(
      () => this.assessWithLlm(input),
      () => this.offline.assess(input),
    );
  }

  private async assessWithLlm({ conversation, profile }: { conversation: Conversation; profile: DataProfile | null }): Promise<Assessment> {
    const out = await askJson(
      this.client,
      "verifier",
      "verify-request",
      {
        ...conversationForPrompt(conversation),
        profile: profile ? profileForPrompt(profile) : "(no dataset has been read yet)",
        task_kinds: TASK_KINDS.join(", "),
      },
      AssessOutput,
    );
    const u = understand(conversation, profile);
    const hasContext = conversation.files.length > 0 || Object.keys(conversation.answers).length > 0;
    // A decline stands only when the user's own words do not plainly ask for a model (a task or a target).
    const plainlyMl = u.parsed.relevant && (u.task !== null || u.target !== null);
    if (!out.relevant && !hasContext && !plainlyMl) {
      const why = out.decline_reason ? clip(out.decline_reason, 300) : "This request doesn't look like a machine-learning task.";
      return { relevant: false, declineReason: `${why} ${OFF_TOPIC_HINT}`, questions: [], notes: [] };
    }

    // A task kind the user's words name outranks the model's; the data can settle what the words left
    // open (images, an edge list, a horizon over a time column).
    const llmTask = normaliseTask(out.task);
    const plain = llmTask === "classification" || llmTask === "regression";
    const fromData = u.task !== null && harnessVariantOf(u.task) !== "tabular";
    const worded = u.parsed.task !== null || u.parsed.nClusters !== null ? u.task : null;
    const task = normaliseTask(conversation.answers.task) ?? worded ?? (plain && fromData ? u.task : llmTask) ?? u.task;

    const llmQuestions = out.questions.flatMap((q) => {
      const parsed = QuestionOutput.safeParse(q);
      return parsed.success ? [parsed.data] : [];
    });
    if (!profile) return { relevant: true, declineReason: null, questions: [datasetQuestion(task)], notes: [] };

    const questions: Question[] = [];
    const notes: string[] = [];
    const needed = task ? variantQuestions(task, profile, conversation, u.parsed, u.target) : [];
    const dataset = needed.filter((q) => q.slot === "dataset");
    if (dataset.length) return { relevant: true, declineReason: null, questions: dataset, notes };
    if (task !== "clustering") {
      const answered = conversation.answers.target;
      const llmTarget = out.target === null ? null : String(out.target);
      const target = answered ? resolveColumn(profile, answered) : (u.target ?? exactColumn(profile, llmTarget));
      if (!target) {
        const ordered = targetChoices(profile, task);
        const wrong = answered ?? llmTarget ?? u.unknownTarget;
        const asked = llmQuestions.find((q) => q.slot === "target")?.text;
        const text = wrong
          ? `I couldn't find "${clip(wrong, 60)}" among the columns of ${profile.name}. Which column should I predict?`
          : asked
            ? clip(asked, 300)
            : `Which column of ${profile.name} should I predict?`;
        questions.push({
          slot: "target",
          text,
          choices: ordered.slice(0, MAX_CHOICES).map((c) => ({ label: c, value: c })),
          allowFreeText: true,
        });
      }
    } else {
      const answered = conversation.answers.labels;
      if (answered && !resolveColumn(profile, answered))
        notes.push(`"${clip(answered, 60)}" is not a column; clustering will be judged by the silhouette score.`);
    }
    questions.push(...needed);
    return { relevant: true, declineReason: null, questions, notes };
  }

  // ------------------------------------------------------------------------------------------
  // Planning
  // ------------------------------------------------------------------------------------------

  async plan(input: PlanInput): Promise<Plan[]> {
    const count = Math.max(1, Math.min(input.count, this.options.plans ?? input.count));
    // The offline planner decides which approaches the plans take and which families are allowed
    // (requested ones first, missing modules substituted and announced, tried approaches left out).
    const skeletons = await this.offline.plan({ ...input, count });
    const insights = await this.summariseKnowledge(input.requirements, input.knowledge);
    const approaches = skeletons.map((s) => s.approach);
    let ready = 0;
    const plans = await Promise.all(
      skeletons.map((skeleton, i) =>
        this.writePlan(skeleton, i, approaches, insights, input)
          .catch((err: unknown) => {
            if (isOutputError(err)) return skeleton;
            throw err;
          })
          .then((plan) => {
            input.onPlan?.(plan, ++ready, skeletons.length);
            return plan;
          }),
      ),
    );
    return plans;
  }

  /** Short planning insights from the retrieved knowledge; on bad output the snippets' titles serve. */
  private async summariseKnowledge(req: Requirements, knowledge: KnowledgeItem[]): Promise<string[]> {
    if (knowledge.length === 0) return [];
    const snippets = knowledge.map((k) => `[${k.source}] ${k.title}: ${k.text}`).join("\n");
    try {
      const out = await askJson(
        this.client,
        "manager",
        "knowledge",
        { task: req.task, requirements: requirementsForPrompt(req), snippets: quote(snippets, 8000, "retrieved knowledge") },
        KnowledgeOutput,
      );
      return clipAll(out.insights, MAX_INSIGHTS, 240);
    } catch (err) {
      if (!isOutputError(err)) throw err;
      return clipAll(
        knowledge.map((k) => k.text),
        MAX_INSIGHTS,
        240,
      );
    }
  }

  private async writePlan(
    skeleton: Plan,
    index: number,
    approaches: string[],
    insights: string[],
    input: { requirements: Requirements; profile: DataProfile; feedback: string[]; failures: string[]; installed: Record<string, boolean> },
  ): Promise<Plan> {
    const req = input.requirements;
    const allowed = allowedFamilies(skeleton, input);
    const out = await askJson(
      this.client,
      "manager",
      "plan",
      {
        plan_number: index + 1,
        plan_count: approaches.length,
        approach: skeleton.approach,
        other_approaches: approaches.filter((_, j) => j !== index).join(", ") || "(none)",
        families: JSON.stringify(
          allowed.map((f) => ({ id: f.id, label: f.label, estimator: f.estimator, strengths: f.strengths, preprocess: f.preprocess })),
        ),
        default_models: JSON.stringify(skeleton.models.map((m) => m.family)),
        notices: skeleton.notices.length ? skeleton.notices.join(" ") : "(none)",
        requirements: requirementsForPrompt(req),
        profile: profileForPrompt(input.profile, 4000),
        insights: insights.length ? quote(insights.map((s) => `- ${s}`).join("\n"), 3000, "planning insights") : "(none)",
        feedback: input.feedback.length ? quote(input.feedback.join("\n"), 2000, "user's revision request") : "(none)",
        failures: input.failures.length
          ? `Earlier plans using these approaches were executed and fell short (no usable score, or the requested metric was not reached): ${input.failures.join(", ")}. Do not repeat what they did.`
          : "(none: this is the first round)",
      },
      PlanOutput,
    );
    const byId = new Map(allowed.map((f) => [f.id, f]));
    const picked: Family[] = [];
    for (const item of out.models) {
      const id = typeof item === "string" ? item : typeof item === "object" && item !== null ? (item as { family?: unknown; id?: unknown }).family ?? (item as { id?: unknown }).id : null;
      const family = typeof id === "string" ? byId.get(id.trim()) : undefined;
      if (family && !picked.includes(family)) picked.push(family);
    }
    // A family the user asked for stays in the plan that carries it.
    const requested = new Set(modelKeys(req.task, req.requested_models));
    for (const m of skeleton.models) {
      const family = byId.get(m.family);
      if (family && (requested.has(family.id) || family.aliases.some((a) => requested.has(a))) && !picked.includes(family)) picked.unshift(family);
    }
    const models = picked.length
      ? picked.slice(0, 2).map((f) => ({ family: f.id, label: f.label, estimator: f.estimator }))
      : skeleton.models;
    const preprocessing = clipAll(out.preprocessing, 8, 240);
    return {
      id: skeleton.id,
      title: clip(out.title, 80) || skeleton.title,
      approach: skeleton.approach,
      summary: clip(out.summary, 600) || skeleton.summary,
      preprocessing: preprocessing.length ? preprocessing : skeleton.preprocessing,
      models,
      training: clip(out.training, 400) || skeleton.training,
      inference: clip(out.inference, 300) || skeleton.inference,
      rationale: clip(out.rationale, 800) || skeleton.rationale,
      notices: skeleton.notices,
    };
  }

  // ------------------------------------------------------------------------------------------
  // Execution verification
  // ------------------------------------------------------------------------------------------

  async verifyExecution({ requirements, executions, modelPlans }: { requirements: Requirements; executions: PlanExecution[]; modelPlans: ModelPlan[] }): Promise<ExecutionVerdict[]> {
    // The numbers decide: usable or not, target met or not. The review adds what the numbers miss.
    const verdicts = await this.offline.verifyExecution({ requirements, executions });
    if (!verdicts.some((v) => v.ok)) return verdicts;
    const expected = Object.assign({}, ...modelPlans.map((m) => m.expected)) as ModelPlan["expected"];
    const evidence = executions.map((e) => ({
      plan_id: e.planId,
      metric: e.metric,
      candidates: e.candidates.map((c) => ({
        id: c.id,
        model: c.label,
        cv_score: c.score,
        trials: c.trials,
        ...(expected[c.id] ? { expected_range: [expected[c.id].low, expected[c.id].high] } : {}),
        ...(c.error ? { error: c.error.slice(0, 200) } : {}),
      })),
      data_findings: e.dataFindings.slice(0, 6),
    }));
    const checks = verdicts.map((v) => ({ plan_id: v.planId, usable: v.ok, best_score: v.score, meets_target: v.meetsTarget, facts: v.reasons }));
    try {
      const out = await askJson(
        this.client,
        "verifier",
        "verify-execution",
        {
          requirements: requirementsForPrompt(requirements),
          evidence: quote(JSON.stringify(evidence), 8000, "cross-validation results"),
          checks: quote(JSON.stringify(checks), 3000, "numeric checks"),
        },
        VerifyExecutionOutput,
      );
      return verdicts.map((v) => {
        const review = out.verdicts.find((r) => r.plan_id === v.planId);
        if (!review) return v;
        const reasons = clipAll(review.reasons, 3, 300).map((r) => `review: ${r}`);
        if (!review.pass && v.ok && v.meetsTarget !== false && reasons.length === 0) reasons.push("review: flagged without a reason; the measured scores stand");
        return { ...v, reasons: [...v.reasons, ...reasons] };
      });
    } catch (err) {
      if (isOutputError(err)) return verdicts;
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Selection
  // ------------------------------------------------------------------------------------------

  async select(input: SelectInput): Promise<Instructions> {
    const base = await this.offline.select(input);
    const metric = input.requirements.metric.name;
    const ranked = rankedPool(input.executions, input.chosenPlanId, metric);
    if (ranked.length <= 1) return base;
    const plans = input.plans
      .filter((p) => ranked.some((c) => c.planId === p.id))
      .map((p) => ({ plan_id: p.id, title: p.title, approach: p.approach, notices: p.notices }));
    const candidates = ranked.map((c) => ({ id: c.id, plan_id: c.planId, model: c.label, estimator: c.estimator, cv_score: c.score, trials: c.trials, params: c.params }));
    const verdicts = input.verdicts.map((v) => ({ plan_id: v.planId, meets_target: v.meetsTarget, reasons: v.reasons.slice(0, 4) }));
    let out: SelectOutput;
    try {
      out = await askJson(
        this.client,
        "manager",
        "select",
        {
          metric: `${metric} (${input.requirements.metric.direction === "max" ? "higher" : "lower"} is better)`,
          best_id: ranked[0].id,
          requirements: requirementsForPrompt(input.requirements),
          plans: quote(JSON.stringify(plans), 3000, "plans"),
          candidates: quote(JSON.stringify(candidates), 6000, "evaluated candidates"),
          verdicts: quote(JSON.stringify(verdicts), 3000, "verdicts"),
        },
        SelectOutput,
      );
    } catch (err) {
      if (isOutputError(err)) return base;
      throw err;
    }
    const chosen = ranked.find((c) => c.id === out.candidate_id.trim());
    if (!chosen) return base;
    const rest = ranked.filter((c) => c !== chosen);
    const best = ranked[0];
    const reason = clip(out.reason, 300);
    const notes =
      chosen === best
        ? [...base.notes, ...(reason ? [reason] : [])]
        : [
            `${chosen.label} from ${chosen.planId} (cross-validated ${metric} ${fmt(chosen.score)}) was chosen over the top-scoring ${best.label} (${fmt(best.score)})${reason ? `: ${reason}` : "."}`,
          ];
    const extra = clipAll(out.notes, 3, 240);
    const dataPlan = input.dataPlans.find((d) => d.planId === chosen.planId);
    const { planId: _p, ...candidate } = chosen;
    return {
      planId: chosen.planId,
      candidate,
      alternatives: rest.map(({ planId: _q, ...c }) => c),
      dropColumns: dataPlan?.dropColumns ?? input.requirements.drop_columns,
      notes: [...notes, ...extra],
    };
  }

  // ------------------------------------------------------------------------------------------
  // Implementation verification
  // ------------------------------------------------------------------------------------------

  async verifyImplementation(input: VerifyImplementationInput): Promise<ImplementationVerdict> {
    const { requirements, result, implementation: impl, notices } = input;
    const numeric = await this.offline.verifyImplementation(input);
    if (numeric.failure !== "success") return numeric;
    const wishes = nonNumericWishes(requirements);
    if (wishes.length === 0) return numeric;
    try {
      const out = await askJson(
        this.client,
        "verifier",
        "verify-implementation",
        {
          wishes: quote(wishes.map((w) => `- ${w}`).join("\n"), 2000, "non-numeric requirements"),
          description: quote(impl.description, 300, "implementation"),
          adjustments: quote(impl.adjustments.length ? impl.adjustments.join("\n") : "(none)", 1000, "adjustments"),
          notices: quote(notices.length ? notices.join("\n") : "(none)", 1500, "announced substitutions"),
          code: quote(impl.code, 8000, "solution.py"),
          metrics: JSON.stringify(result.metrics),
          complexity: JSON.stringify(result.complexity),
          plots: JSON.stringify(result.plots.map((p) => basename(p))),
        },
        VerifyImplementationOutput,
      );
      const reasons = clipAll(out.reasons, 4, 300);
      // A mismatch must say why; a bare "design_mismatch" is not enough to throw away a passing run.
      if (out.verdict === "design_mismatch" && reasons.length > 0) return { failure: "design_mismatch", checks: numeric.checks, reasons };
      return numeric;
    } catch (err) {
      if (isOutputError(err)) return numeric;
      throw err;
    }
  }
}

/** Families a plan for this approach may use: installed, fitting the data, not refused; plus the skeleton's own. */
function allowedFamilies(
  skeleton: Plan,
  input: { requirements: Requirements; profile: DataProfile; feedback: string[]; installed: Record<string, boolean> },
): Family[] {
  const recipes = recipesFor(input.requirements.task);
  if (!recipes) return [];
  const refused = refusedKeys(input.feedback);
  const sparse = textFeatureColumns(input.profile, input.requirements).length > 0;
  const fromSkeleton = skeleton.models.map((m) => recipes.families.find((f) => f.id === m.family)).filter((f): f is Family => f !== undefined);
  const usable = recipes.families.filter(
    (f) =>
      f.approach === skeleton.approach &&
      !(sparse && f.dense_only) &&
      f.requires.every((m) => input.installed[m] === true) &&
      (f.max_rows === undefined || input.profile.rows <= f.max_rows) &&
      !refused.has(f.id) &&
      !f.aliases.some((a) => refused.has(a)),
  );
  return [...fromSkeleton, ...usable].filter((f, i, all) => all.indexOf(f) === i);
}

/** Evaluated candidates of the chosen plan (or of every plan), best first. */
function rankedPool(executions: PlanExecution[], chosenPlanId: string, metric: string): Array<RankedCandidate & { planId: string }> {
  return executions
    .filter((e) => chosenPlanId === "best" || e.planId === chosenPlanId)
    .flatMap((e) => e.candidates.map((c) => ({ ...c, planId: e.planId })))
    .filter((c) => c.score !== null)
    .sort((a, b) => (better(metric, a.score, b.score) ? -1 : better(metric, b.score, a.score) ? 1 : 0));
}
