// ESM mode: @actions/core and @actions/exec 3 ship `import` exports only.
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node'
}

// The connection code does not depend on how the engine keeps images: the remote engines' suite,
// which starts its own dockerd, runs with the overlay2 Docker flavours only.
const storeFlavours = ['podman', 'docker26-containerd', 'docker28-containerd']
const remoteOnlyWithDocker = storeFlavours.includes(process.env.RECLAIM_ENGINE ?? '') ? ['/remote\\.test\\.ts$'] : []

export default {
  // The integration suites share one engine: never two at once.
  maxWorkers: 1,
  // Global in Jest 30: a project-level testTimeout is ignored. Unit tests never come near it.
  testTimeout: 120000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/__tests__/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/__tests__/integration/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...remoteOnlyWithDocker],
      globalSetup: '<rootDir>/__tests__/integration/setup.ts',
      globalTeardown: '<rootDir>/__tests__/integration/teardown.ts'
    }
  ]
}
