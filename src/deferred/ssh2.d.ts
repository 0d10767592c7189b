// The types stay ssh2's own: "paths" sends the type checker here as well as the bundler.
export * from '../../node_modules/@types/ssh2'
