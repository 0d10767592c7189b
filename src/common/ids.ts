/** The 12 hex digits `docker images` shows for an ID. */
export const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)
