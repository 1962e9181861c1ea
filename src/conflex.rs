//! Pure: a small lexer for nginx's config syntax (words, quoted strings, `;`, `{`, `}`,
//! comments), with byte spans, so that other modules can rewrite or compare configs by statement
//! rather than by line.

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A word or a quoted string, unquoted (escapes kept as written).
    Word(String),
    /// `;`
    Semi,
    /// `{`
    Open,
    /// `}`
    Close,
}

/// One token and where it sits in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub kind: Kind,
    /// Byte offset of its first character (the quote, for a quoted string).
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
    /// Whether it was written in quotes.
    pub quoted: bool,
}

/// The tokens of `text`; comments (`#` to end of line outside quotes) are dropped.
pub fn tokens(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b';' | b'{' | b'}' => {
                let kind = match c {
                    b';' => Kind::Semi,
                    b'{' => Kind::Open,
                    _ => Kind::Close,
                };
                out.push(Token {
                    kind,
                    start: i,
                    end: i + 1,
                    quoted: false,
                });
                i += 1;
            }
            b'"' | b'\'' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(b.len());
                out.push(Token {
                    kind: Kind::Word(text[start + 1..end.saturating_sub(1).max(start + 1)].into()),
                    start,
                    end,
                    quoted: true,
                });
                i = end;
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{') {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(b.len());
                out.push(Token {
                    kind: Kind::Word(text[start..end].into()),
                    start,
                    end,
                    quoted: false,
                });
            }
        }
    }
    out
}

/// One statement: its words (directive first) and the span from its first word to its `;` or
/// `{` (inclusive); `opens` is true for a block head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Directive and arguments.
    pub words: Vec<String>,
    /// Span start.
    pub start: usize,
    /// Span end (past the `;` or `{`).
    pub end: usize,
    /// A block head (`... {`) rather than a simple directive.
    pub opens: bool,
    /// How many blocks enclose it.
    pub depth: usize,
}

/// The statements of `text` in order (block heads and simple directives; `}` only changes depth).
pub fn statements(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start = None;
    let mut depth = 0usize;
    for t in tokens(text) {
        match t.kind {
            Kind::Word(w) => {
                start.get_or_insert(t.start);
                words.push(w);
            }
            Kind::Semi | Kind::Open => {
                let opens = t.kind == Kind::Open;
                out.push(Statement {
                    words: std::mem::take(&mut words),
                    start: start.take().unwrap_or(t.start),
                    end: t.end,
                    opens,
                    depth,
                });
                if opens {
                    depth += 1;
                }
            }
            Kind::Close => {
                words.clear();
                start = None;
                depth = depth.saturating_sub(1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_with_quotes_comments_and_blocks() {
        let text =
            "http { # c ; {\n include \"a b/*.conf\"; root '/x;y';\n server { listen 80; } }\n";
        let s = statements(text);
        let words: Vec<_> = s.iter().map(|s| (s.words.join(" "), s.depth)).collect();
        assert_eq!(
            words,
            [
                ("http".into(), 0),
                ("include a b/*.conf".into(), 1),
                ("root /x;y".into(), 1),
                ("server".into(), 1),
                ("listen 80".into(), 2),
            ]
        );
        assert_eq!(&text[s[1].start..s[1].end], "include \"a b/*.conf\";");
    }
}
