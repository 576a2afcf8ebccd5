"""The faq collection: questions and their answers from perlfaq, the Python FAQ and the Debian FAQ."""

import html
import os
import re
from html.parser import HTMLParser

from texts import cut, make_id, norm_query, tidy

# ---------------------------------------------------------------------------------------------
# faq: perlfaq (POD)


POD_CODE = re.compile(r"([A-Z])(<+)")


def pod_codes(text):
    """Plain text from POD formatting codes (B<>, C<<< >>>, L<text|target>, E<gt>, X<>...)."""
    out, i = [], 0
    while i < len(text):
        m = POD_CODE.match(text, i)
        if not m:
            out.append(text[i])
            i += 1
            continue
        code, opens = m.group(1), len(m.group(2))
        start = m.end()
        if opens > 1:
            close = text.find(" " + ">" * opens, start)
            if close < 0:
                out.append(text[i])
                i += 1
                continue
            inner, i = text[start:close].strip(), close + 1 + opens
        else:
            depth, j = 1, start
            while j < len(text) and depth:
                if text[j] == "<" and j > 0 and text[j - 1].isupper():
                    depth += 1
                elif text[j] == ">":
                    depth -= 1
                j += 1
            if depth:
                out.append(text[i])
                i += 1
                continue
            inner, i = text[start:j - 1], j
        out.append(pod_code(code, pod_codes(inner) if code not in "EX" else inner))
    return "".join(out)


POD_ENTITIES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}


def pod_code(code, inner):
    if code in "XZ":
        return ""
    if code == "E":
        if inner in POD_ENTITIES:
            return POD_ENTITIES[inner]
        if inner.isdigit():
            return chr(int(inner))
        if inner.lower().startswith("0x"):
            return chr(int(inner, 16))
        return html.unescape(f"&{inner};")
    if code == "L":
        if "|" in inner:
            return inner.split("|", 1)[0]
        if re.match(r"\w+:[^:\s]\S*$", inner):
            return inner  # a URL
        page, _, section = inner.partition("/")
        section = section.strip('"')
        if page and section:
            return f'"{section}" in {page}'
        return section or page
    return inner


def pod_to_text(pod):
    """Plain text from a POD fragment: commands dropped or reduced, codes resolved."""
    out, skip_until = [], None
    for para in re.split(r"\n[ \t]*\n", pod):
        if skip_until:
            if re.match(rf"^=end\s+{re.escape(skip_until)}", para):
                skip_until = None
            continue
        if para.startswith("="):
            m = re.match(r"^=(\w+)\s*(.*)", para, flags=re.S)
            cmd, arg = m.group(1), m.group(2).strip()
            if cmd == "begin":
                skip_until = arg.split()[0] if arg else ""
            elif cmd in ("item",):
                out.append(pod_codes(arg) if arg != "*" else "*")
            elif cmd.startswith("head"):
                out.append(pod_codes(arg))
            continue  # =over, =back, =for, =pod, =cut, =encoding
        if para[:1] in (" ", "\t"):
            out.append(para.rstrip())  # verbatim
        else:
            out.append(pod_codes(para).strip())
    return tidy("\n\n".join(p for p in out if p.strip()))


def perlfaq(root):
    files = []
    for d, _, names in os.walk(os.path.join(root, "usr", "share", "perl")):
        files += [os.path.join(d, n) for n in names if re.fullmatch(r"perlfaq[1-9]\.pod", n)]
    pairs = []
    for path in sorted(files):
        number = re.search(r"perlfaq([1-9])\.pod$", path).group(1)
        pod = open(path, encoding="utf-8", errors="replace").read()
        parts = re.split(r"^=head2[ \t]+(.*)$", pod, flags=re.M)
        for k in range(1, len(parts), 2):
            answer = re.split(r"^=head1", parts[k + 1], flags=re.M)[0]
            pairs.append((f"faq:perl:{number}.{k // 2 + 1}", norm_query(pod_codes(parts[k])),
                          pod_to_text(answer)))
    return pairs


# ---------------------------------------------------------------------------------------------
# faq: the Python FAQ (reStructuredText sources)


def rst_inline(text):
    text = re.sub(r":[\w:.-]+:`([^`]*?)\s*<[^`>]*>`", r"\1", text)     # :ref:`text <target>`
    text = re.sub(r":[\w:.-]+:`[~!]?([^`]*)`", r"\1", text)            # :func:`~a.b`
    text = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", text)             # `text <url>`_
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"`([^`]+)`_{0,2}", r"\1", text)
    text = re.sub(r"(?<![\w*])\*\*(\S[^*\n]*?)\*\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(\S[^*\n]*?)\*(?![\w*])", r"\1", text)
    return text


def rst_to_text(rst):
    out, lines, i = [], rst.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)\.\.(\s+.*)?$", line)
        if m:  # a directive, target, substitution or comment: its line and its options go
            i += 1
            while i < len(lines) and re.match(r"^\s+:[\w-]+:", lines[i]):
                i += 1
            continue
        line = re.sub(r"\s*::$", ":", line) if line.strip() != "::" else ""
        out.append(rst_inline(line))
        i += 1
    return tidy("\n".join(out))


def python_faq(root):
    files = []
    for d, _, names in os.walk(os.path.join(root, "usr", "share", "doc")):
        if d.replace(os.sep, "/").endswith("_sources/faq"):
            files += [os.path.join(d, n) for n in names
                      if n.endswith(".rst.txt") and n != "index.rst.txt"]
    pairs = []
    for path in sorted(files):
        stem = os.path.basename(path)[:-len(".rst.txt")]
        lines = open(path, encoding="utf-8").read().split("\n")
        heads = []
        for i in range(len(lines) - 1):
            title, under = lines[i].rstrip(), lines[i + 1].strip()
            if (title.strip() and not title[0].isspace()
                    and re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", under)
                    and len(under) >= len(title.strip()) - 1):
                heads.append(i)
        for k, i in enumerate(heads):
            end = heads[k + 1] if k + 1 < len(heads) else len(lines)
            if end < len(lines) and re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}",
                                                 lines[end - 1].strip() or "x"):
                end -= 1  # the next title has an overline
            question = norm_query(rst_inline(lines[i]))
            if "?" not in question:
                continue
            pairs.append((f"faq:python:{stem}.{k + 1}", question,
                          rst_to_text("\n".join(lines[i + 2:end]))))
    return pairs


# ---------------------------------------------------------------------------------------------
# faq: the Debian FAQ (HTML)

BLOCKS = {"p", "div", "pre", "li", "dt", "dd", "tr", "br", "table", "ul", "ol", "dl",
          "blockquote", "h1", "h2", "h3", "h4", "h5"}


class FaqHtml(HTMLParser):
    """Sections of the DocBook HTML: [(heading, text)], navigation and tables of contents out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = []  # [heading, [text pieces]]
        self.heading = None
        self.skip_depth = 0  # inside a div.toc / navheader / navfooter: how many divs deep
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if self.skip_depth:
            if tag == "div":
                self.skip_depth += 1
            return
        if tag == "div" and cls.split() and cls.split()[0] in ("toc", "navheader", "navfooter"):
            self.skip_depth = 1
            return
        if tag in ("h1", "h2", "h3", "h4") and "title" in cls:
            self.heading = []
            return
        if tag == "pre":
            self.pre += 1
        if tag in BLOCKS:
            self._text("\n\n" if tag not in ("br", "li", "dt", "dd", "tr") else "\n")
        if tag == "li":
            self._text("* ")

    def handle_endtag(self, tag):
        if self.skip_depth:
            if tag == "div":
                self.skip_depth -= 1
            return
        if tag in ("h1", "h2", "h3", "h4") and self.heading is not None:
            self.sections.append([norm_query("".join(self.heading)), []])
            self.heading = None
            return
        if tag == "pre":
            self.pre -= 1
        if tag in BLOCKS:
            self._text("\n\n")

    def handle_data(self, data):
        if self.skip_depth:
            return
        if self.heading is not None:
            self.heading.append(data)
        elif self.pre:
            self._text(data)
        else:
            self._text(re.sub(r"\s+", " ", data))

    def _text(self, s):
        if not self.sections or self.heading is not None:
            return
        pieces = self.sections[-1][1]
        if not self.pre and (not pieces or pieces[-1].endswith("\n")):
            s = s.lstrip(" ")  # no indent at the start of a line outside <pre>
        if s:
            pieces.append(s)


def debian_faq(root):
    pairs = []
    for d, _, names in os.walk(os.path.join(root, "usr", "share", "doc")):
        for n in sorted(names):
            if not n.endswith(".en.html") or n == "index.en.html":
                continue
            parser = FaqHtml()
            parser.feed(open(os.path.join(d, n), encoding="utf-8", errors="replace").read())
            for heading, pieces in parser.sections:
                m = re.match(r"^(\d+(?:\.\d+)+)\.?\s+(.*)$", heading)
                if not m or "?" not in m.group(2):
                    continue
                text = "".join(pieces).replace("\u00a0", " ")
                pairs.append((f"faq:debian:{m.group(1)}", norm_query(m.group(2)), tidy(text)))
    return sorted(pairs)


def build_faq(perl_root, python_root, debian_root):
    pairs = perlfaq(perl_root) + python_faq(python_root) + debian_faq(debian_root)
    sources = {"perl": 0, "python": 0, "debian": 0}
    counts = {}
    for _, q, _ in pairs:
        counts[q.lower()] = counts.get(q.lower(), 0) + 1
    docs, queries, empty = {}, {}, 0
    for raw_id, question, answer in sorted(pairs):
        if len(answer) < 1:
            empty += 1
            continue
        doc_id = make_id(raw_id)
        assert doc_id not in docs, doc_id
        docs[doc_id] = cut(answer)
        if counts[question.lower()] == 1:
            queries[doc_id] = question
            sources[raw_id.split(":")[1]] += 1
    stats = {"pairs": len(pairs), "empty_answers_dropped": empty,
             "queries_dropped_not_unique": len(docs) - len(queries), "queries_by_source": sources}
    return docs, queries, stats
