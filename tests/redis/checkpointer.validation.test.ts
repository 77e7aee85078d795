import { validate } from "@langchain/langgraph-checkpoint-validation";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, test } from "vitest";
import initializer from "./checkpointer.initializer.js";

// The validation suite calls vitest's functions as globals; provide them to this file only rather
// than turning globals on for the whole project.
Object.assign(globalThis, { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, test });

validate(initializer);
