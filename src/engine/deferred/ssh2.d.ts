// The types stay ssh2's own. tsconfig.json "paths" lists this file first, for the type checker,
// and ssh2.js second, for ncc, which skips this one: without allowJs it looks for .ts files only.
export * from '../../../node_modules/@types/ssh2'
