// Reads round reports (JSON text, one per line on stdin) with JavaScript's own JSON.parse, as every
// explorer and claim front end does, and prints each token amount as the page would see it.
import { createInterface } from "node:readline";

const amounts = (report) => ({
  rewards: report.inputs.map((entry) => String(entry.reward)),
  budget: String(report.rewards.budget),
  round_total: String(report.rewards.round_total),
  round: Object.fromEntries(Object.entries(report.rewards.round).map(([k, v]) => [k, String(v)])),
  cumulative: Object.fromEntries(Object.entries(report.rewards.cumulative).map(([k, v]) => [k, String(v)])),
});

const out = [];
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) out.push(amounts(JSON.parse(line)));
}
process.stdout.write(JSON.stringify(out));
