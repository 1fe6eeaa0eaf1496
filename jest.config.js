/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  // middy and jose ship ESM only; swc turns them into CommonJS for jest.
  transformIgnorePatterns: ['/node_modules/(?!(@middy|jose)/)'],
  // Time budgets. A test body: 30 s, ample for what it computes or reads. What a suite prepares before its
  // tests (the infra suites' stack synthesis) runs in beforeAll under its own budget, stated in one place per
  // kind: test/infra/synthesized.ts's budget(...) for each synthesized configuration.
  testTimeout: 30000,
  // The suites wait on local servers (and their injected timeouts) as much as they compute: three
  // workers on two cores keep both busy.
  maxWorkers: 3,
};
