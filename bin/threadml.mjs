#!/usr/bin/env node
// ThreadML's command line. TypeScript sources run through tsx's loader, so no build step is needed.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
await main();
