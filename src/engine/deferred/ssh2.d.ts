// Gives the stand-in ssh2's own types. tsconfig.json "paths" maps ssh2 to deferred/ssh2, where the
// type checker finds this file, and then to deferred/ssh2.js, which ncc bundles: without allowJs,
// ncc tries only the .ts and .tsx extensions, finds no ssh2.ts and moves on to the second entry.
export * from '../../../node_modules/@types/ssh2'
