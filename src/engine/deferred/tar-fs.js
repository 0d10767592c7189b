// Stands in for tar-fs in the bundle (tsconfig.json "paths"). dockerode requires it as it loads,
// with tar-stream, bl and pump, to pack the build contexts of buildImage, which this action never
// sends. tar-fs is loaded on first use.
exports.pack = (...args) => require('tar-fs/index.js').pack(...args)
exports.extract = (...args) => require('tar-fs/index.js').extract(...args)
