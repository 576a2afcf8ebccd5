"""What the collection builders share: document ids, cutting and tidying text, and logging."""

import hashlib
import re
import sys

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MIN_DOC_CHARS = 200
MAX_DOC_CHARS = 60_000
LONG_DOC_CHARS = 2_048  # what the product embeds of a document without passages


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# ids and text helpers


def make_id(raw):
    """A document id matching ID_RE: unsafe characters become '_'; a long id keeps a hash."""
    safe = re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)
    if len(safe) > 64:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
        safe = safe[:53] + "-" + digest
    assert ID_RE.match(safe), safe
    return safe


def cut(text, limit=MAX_DOC_CHARS):
    """At most `limit` characters, cut at the last whitespace before the limit."""
    if len(text) <= limit:
        return text
    head = text[:limit + 1]
    m = re.search(r"\s\S*\Z", head)
    end = m.start() if m and m.start() > 0 else limit
    return head[:end].rstrip()


def tidy(text):
    """Trailing spaces off every line, no more than one blank line in a row, trimmed."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def norm_query(text):
    return re.sub(r"\s+", " ", text).strip()
