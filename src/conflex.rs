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

/// `;` as a byte: the end of a simple directive.
const SEMI: u8 = b';';
/// `{` as a byte: opens a block.
const OPEN: u8 = b'{';
/// `}` as a byte: closes a block.
const CLOSE: u8 = b'}';

/// The tokens of `text`; comments (`#` to end of line outside quotes) are dropped.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        at: 0,
        out: Vec::new(),
    };
    while lexer.at < lexer.bytes.len() {
        lexer.step();
    }
    lexer.out
}

/// The tokenizer's state: where the next token may start, and the tokens so far.
struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    /// Reads what starts at `at`: blank, comment, punctuation, quoted string or bare word.
    fn step(&mut self) {
        let c = self.bytes[self.at];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => self.at += 1,
            b'#' => self.comment(),
            SEMI | OPEN | CLOSE => self.punct(c),
            b'"' | b'\'' => self.quoted(c),
            _ => self.word(),
        }
    }

    /// Skips to the end of the line.
    fn comment(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at] != b'\n' {
            self.at += 1;
        }
    }

    fn punct(&mut self, c: u8) {
        let kind = match c {
            SEMI => Kind::Semi,
            OPEN => Kind::Open,
            _ => Kind::Close,
        };
        self.push(kind, self.at, self.at + 1, false);
        self.at += 1;
    }

    /// A string in `quote`s; an unterminated one runs to the end of the text.
    fn quoted(&mut self, quote: u8) {
        let start = self.at;
        self.at += 1;
        self.skip_while(|b| b != quote);
        // Unterminated (or ended by an escape): the rest of the text, cut at a char boundary
        // even when the escape skipped into a multi-byte character.
        let closed = self.at < self.bytes.len();
        let end = if closed {
            self.at + 1
        } else {
            self.bytes.len()
        };
        let inner = &self.text[start + 1..if closed { self.at } else { end }];
        self.push(Kind::Word(inner.into()), start, end, true);
        self.at = end;
    }

    /// A bare word: up to blank, `;` or `{` (a `}` inside a word is part of it, as for nginx).
    fn word(&mut self) {
        let start = self.at;
        self.skip_while(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | SEMI | OPEN));
        let end = self.at.min(self.bytes.len());
        let word = &self.text[start..end];
        self.push(Kind::Word(word.into()), start, end, false);
    }

    /// Advances while `more` holds; a backslash escapes the byte after it.
    fn skip_while(&mut self, more: impl Fn(u8) -> bool) {
        while self.at < self.bytes.len() && more(self.bytes[self.at]) {
            self.at += if self.bytes[self.at] == b'\\' { 2 } else { 1 };
        }
    }

    fn push(&mut self, kind: Kind, start: usize, end: usize, quoted: bool) {
        self.out.push(Token {
            kind,
            start,
            end,
            quoted,
        });
    }
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
    fn an_unterminated_quote_never_cuts_a_character() {
        // A user's main config is read with this: bad bytes must not panic the daemon.
        for text in ["root \"\\é", "root '\\é", "x \"ab", "\"\\", "\"é\\"] {
            let s = statements(&format!("{text};"));
            assert!(s.len() <= 1, "{text}: {s:?}");
            let _ = tokens(text);
        }
        assert_eq!(
            tokens("\"ab").first().map(|t| t.kind.clone()),
            Some(Kind::Word("ab".into()))
        );
    }

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
