// Mentions as the server reads them (crates/domain/src/messages/mentions.rs):
// `@` and a username (3 to 32 of a-z, 0-9, `_`, `.`, `-`, any case), the `@`
// not continuing a word, the name not followed by more of one, its trailing
// dots the sentence's. Pure functions: the page renders their results as text.

const NAME = /[A-Za-z0-9_.-]/;
const WORD = /[\p{L}\p{N}]/u;

/**
 * `text` cut into runs: `{ text }` for plain text, `{ text, username }` for a
 * mention (`text` is `@` and the name as written, `username` lower case).
 * Joined, the runs' texts are `text`.
 */
export function mentionRuns(text) {
  const runs = [];
  let plain = 0;
  let at = text.indexOf('@');
  while (at !== -1) {
    const before = at > 0 ? text[at - 1] : '';
    let end = at + 1;
    while (end < text.length && NAME.test(text[end])) end += 1;
    let next = at + 1;
    if (!(before && (WORD.test(before) || '_.-@'.includes(before))) && !WORD.test(text[end] ?? '')) {
      let nameEnd = end;
      while (nameEnd > at + 1 && text[nameEnd - 1] === '.') nameEnd -= 1;
      const name = text.slice(at + 1, nameEnd);
      if (name.length >= 3 && name.length <= 32) {
        if (at > plain) runs.push({ text: text.slice(plain, at) });
        runs.push({ text: text.slice(at, nameEnd), username: name.toLowerCase() });
        plain = nameEnd;
      }
      next = end;
    } else if (end > at + 1) {
      next = end;
    }
    at = text.indexOf('@', next);
  }
  if (plain < text.length) runs.push({ text: text.slice(plain) });
  return runs;
}

/**
 * The mention being typed where the caret is: `{ start, prefix }` (the `@`'s
 * index and what follows it, lower case), or null when the caret is not in one.
 */
export function mentionAtCaret(text, caret) {
  const before = text.slice(0, caret);
  const match = /(^|[^\p{L}\p{N}_.\-@])@([A-Za-z0-9_.-]{0,32})$/u.exec(before);
  if (!match) return null;
  return { start: caret - match[2].length - 1, prefix: match[2].toLowerCase() };
}

/** Up to `most` members whose username or display name starts with `prefix`. */
export function mentionCandidates(members, prefix, selfId, most = 8) {
  return members
    .filter(({ user }) => user.id !== selfId)
    .filter(({ user }) => user.username.startsWith(prefix) || user.display_name.toLowerCase().startsWith(prefix))
    .sort((a, b) => a.user.username.localeCompare(b.user.username))
    .slice(0, most);
}
