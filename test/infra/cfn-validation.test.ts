import type { PolicyValidationPluginReport } from 'aws-cdk-lib';
import { budget, CFN_VALIDATION_BUDGET_MS, CONFIGURATION_NAMES, synthesizedAll } from './synthesized';

/**
 * aws-cdk-lib's built-in CloudFormation validation (resource schemas, its default rules), which `cdk synth`
 * runs and reports as warnings: here once per configuration the suites synthesize, its engine started once
 * (the synthesis in synthesized.ts leaves it out, so that not every suite starts it).
 */
describe('CloudFormation validation', () => {
  const reports = new Map<string, PolicyValidationPluginReport>();
  beforeAll(
    async () => {
      // Each as soon as it is synthesized, while other workers synthesize the rest: from the last named (the
      // suites ask for theirs in order), the bundled one (the longest, bundles.test.ts's) last
      const order = [...CONFIGURATION_NAMES].reverse().sort((a, b) => budget(a) - budget(b));
      await synthesizedAll(order, (configuration, name) => reports.set(name, configuration.cfnValidation()));
    },
    budget(...CONFIGURATION_NAMES) + CFN_VALIDATION_BUDGET_MS,
  );

  it.each(CONFIGURATION_NAMES)('finds nothing in the templates of %s', (name) => {
    expect(reports.get(name)?.violations).toEqual([]);
    expect(reports.get(name)?.success).toBe(true);
  });
});
