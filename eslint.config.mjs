// ESLint for the whole repository; formatting is Prettier's (.prettierrc.json), so no style rules here.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import tseslint from 'typescript-eslint'

// src/ is layered: a folder may import only from the folders before it in this list, so that the
// planner stays a pure function and the engine stays behind its interface. action/ and cli/ are
// the two entry points and never import each other.
const LAYERS = ['common', 'plan', 'settings', 'engine', 'host', 'run', 'report', 'action', 'cli']

// Packages that tie code to the runner or to a real engine, and the layers that may use them.
const PACKAGES = [
  { name: '@actions/core', allowedIn: ['report', 'action'] },
  { name: '@actions/exec', allowedIn: ['engine'] },
  { name: 'dockerode', allowedIn: ['engine'] },
  { name: 'ssh2', allowedIn: ['engine'] }
]

// The pure layers touch neither the file system nor the network.
const PURE = ['common', 'plan', 'settings']

function layerRule(layer) {
  const rank = LAYERS.indexOf(layer)
  const above = LAYERS.filter((other, i) => i > rank || (layer === 'action' && other === 'cli'))
  const patterns = []
  if (above.length > 0) {
    patterns.push({
      regex: `^\\.\\./(${above.join('|')})(/|$)`,
      message: `src/${layer}/ may import only from ${LAYERS.slice(0, rank).join(', ') || 'itself'} (eslint.config.mjs LAYERS).`
    })
  }
  if (PURE.includes(layer)) {
    patterns.push({ regex: '^node:', message: `src/${layer}/ is pure: no Node built-ins.` })
  }
  const paths = PACKAGES.filter(pkg => !pkg.allowedIn.includes(layer)).map(pkg => ({
    name: pkg.name,
    message: `src/${layer}/ may not use ${pkg.name}: only ${pkg.allowedIn.join(', ')} may.`
  }))
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { paths, patterns }] }
  }
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.testbed/**', 'src/engine/deferred/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Escaping control characters is the point of the two regular expressions that name them.
      'no-control-regex': 'off'
    }
  },
  {
    // Scripts and configs run by Node itself.
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } }
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly'
      }
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' }
  },
  ...LAYERS.map(layerRule),
  prettier,
  // After Prettier's config, which turns max-len off: comments are lines too, and Prettier wraps
  // code, not prose.
  {
    rules: {
      'max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true }
      ]
    }
  }
)
