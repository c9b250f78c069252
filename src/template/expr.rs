//! The `{{...}}` language of templates: placeholders in parameter strings, and conditions.
//!
//! The seed's syntax — paths (`{{step.items[0].name}}`), `|default:'x'`, `c ? a : b`, and in
//! conditions `==`, `!=`, `<`, `>`, `<=`, `>=`, `&&`, `||`, `!` and parentheses — is small enough
//! to parse by hand in one file, and doing so keeps the language exactly this big. A general
//! engine (minijinja was the candidate) would need the seed's `|default:'x'` and `?:` rewritten
//! into its own forms on load, and would bring loops, ranges, macros and filters into templates
//! that may come from untrusted sources. Here nothing is ever evaluated as code: an expression can
//! only read values, and a rendered value is never parsed again.
//!
//! Text that must arrive as it is (a value seen in a log) is written with [`escape`]: each `{{`
//! becomes the placeholder `{{'{{'}}`, whose value is the two braces. Chains of `||`, `&&` and
//! `|default:` are flat lists, evaluated in a loop, so their length does not reach the stack.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Number, Value};

/// How deeply expressions may nest, so that a hostile template cannot overflow the stack.
const MAX_DEPTH: usize = 32;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Path(Path),
    Not(Box<Expr>),
    /// A comparison.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a || b || …`: whether any is truthy (the rest not evaluated after the first).
    Any(Vec<Expr>),
    /// `a && b && …`: whether all are truthy (the rest not evaluated after the first falsy).
    All(Vec<Expr>),
    /// `condition ? then : else`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `value|default:fallback|default:…`: the first that is neither missing nor null; the last
    /// is taken as it is.
    Default(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    And,
    Or,
}

/// A reference to a value: a variable or a step, then keys and indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: String,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        for s in &self.segments {
            match s {
                Segment::Key(k) if is_identifier(k) => write!(f, ".{k}")?,
                Segment::Key(k) => write!(f, "[{}]", quote(k))?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// `s` as a string literal of the language: in double quotes, a backslash before each `"` and
/// each backslash (the lexer takes the character after a backslash as it is).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Template text whose rendering is `s` itself: every `{{` written as `{{'{{'}}`.
pub fn escape(s: &str) -> Cow<'_, str> {
    if s.contains("{{") {
        Cow::Owned(s.replace("{{", "{{'{{'}}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `v` with every string in it [`escape`]d (object keys are never rendered, so kept).
pub fn escape_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape(s).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(escape_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), escape_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `s` can name a variable or a step, the root of a path (`{{s.field}}`): an identifier
/// that is not `true`, `false` or `null`.
pub fn is_name(s: &str) -> bool {
    is_identifier(s) && !matches!(s, "true" | "false" | "null")
}

/// Whether `s` is letters, digits and `_`, not starting with a digit: a key written `.s`.
pub fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why a string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {at} of {input:?}")]
pub struct ParseError {
    pub input: String,
    /// Character offset of the problem.
    pub at: usize,
    pub message: String,
}

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A path leads nowhere: an unset variable, a step without a result, a missing key or index.
    #[error("{path}: {reason}")]
    Missing { path: String, reason: String },
    /// The value belongs to a step that has not run yet (only when rendering a plan).
    #[error("{0} has not run yet")]
    Pending(String),
    /// Values that cannot be compared.
    #[error("{0}")]
    Type(String),
}

/// Where expressions read their values.
pub trait Scope {
    /// The value at `path`.
    fn resolve(&self, path: &Path) -> Result<Value, EvalError>;
}

/// A string with `{{...}}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Placeholder { expr: Expr, source: String },
}

/// A path that an expression reads, and whether a `|default:` makes it optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub path: Path,
    pub optional: bool,
}

impl Text {
    /// Parses a string; text outside `{{` and `}}` is kept as it is.
    pub fn parse(input: &str) -> Result<Text, ParseError> {
        let mut parts = Vec::new();
        let mut rest = 0;
        while let Some(open) = input[rest..].find("{{").map(|i| rest + i) {
            if open > rest {
                parts.push(Part::Literal(input[rest..open].to_string()));
            }
            let mut p = Parser::new(input, open + 2, true);
            let expr = p.expr()?;
            p.expect(&Token::Close, "'}}'")?;
            parts.push(Part::Placeholder {
                expr,
                source: input[open..p.pos].to_string(),
            });
            rest = p.pos;
        }
        if rest < input.len() {
            parts.push(Part::Literal(input[rest..].to_string()));
        }
        Ok(Text { parts })
    }

    /// Whether the string has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The value of the string. A string that is exactly one placeholder has the value's own
    /// JSON type; otherwise values are written into the text (strings as they are, anything else
    /// as compact JSON).
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        self.render_with(scope, false)
    }

    /// As [`Text::render`], but placeholders that need a step that has not run are kept as
    /// written (for showing a plan).
    pub fn render_known(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        self.render_with(scope, true)
    }

    fn render_with(&self, scope: &dyn Scope, keep_pending: bool) -> Result<Value, EvalError> {
        if let [Part::Placeholder { expr, source }] = self.parts.as_slice() {
            return match expr.eval(scope) {
                Err(EvalError::Pending(_)) if keep_pending => Ok(Value::String(source.clone())),
                other => other,
            };
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Placeholder { expr, source } => match expr.eval(scope) {
                    Ok(Value::String(s)) => out.push_str(&s),
                    Ok(v) => out.push_str(&v.to_string()),
                    Err(EvalError::Pending(_)) if keep_pending => out.push_str(source),
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(Value::String(out))
    }

    /// Every path the placeholders read.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Placeholder { expr, .. } = part {
                expr.references(false, &mut out);
            }
        }
        out
    }
}

/// A JSON value whose strings are parsed [`Text`]s: a step's parameters as a plan holds them,
/// parsed once when the template is checked and rendered on every attempt without parsing again.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Text(Text),
    Array(Vec<Parsed>),
    Object(Vec<(String, Parsed)>),
    /// A number, a boolean, null, or a string without placeholders: itself.
    Value(Value),
}

impl Parsed {
    /// Parses every string of `value`; the first that does not parse is the error.
    pub fn parse(value: &Value) -> Result<Parsed, ParseError> {
        Ok(match value {
            Value::String(s) if s.contains("{{") => Parsed::Text(Text::parse(s)?),
            Value::Array(a) => {
                Parsed::Array(a.iter().map(Parsed::parse).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => Parsed::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), Parsed::parse(v)?)))
                    .collect::<Result<_, ParseError>>()?,
            ),
            other => Parsed::Value(other.clone()),
        })
    }

    /// The value with every placeholder substituted, keys and structure kept.
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        self.render_with(scope, false)
    }

    /// As [`Parsed::render`], keeping the placeholders of steps that have not run as written.
    pub fn render_known(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        self.render_with(scope, true)
    }

    fn render_with(&self, scope: &dyn Scope, keep_pending: bool) -> Result<Value, EvalError> {
        Ok(match self {
            Parsed::Text(t) => t.render_with(scope, keep_pending)?,
            Parsed::Array(a) => Value::Array(
                a.iter()
                    .map(|v| v.render_with(scope, keep_pending))
                    .collect::<Result<_, _>>()?,
            ),
            Parsed::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render_with(scope, keep_pending)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
            Parsed::Value(v) => v.clone(),
        })
    }

    /// Every path the placeholders inside read.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        self.collect_references(&mut out);
        out
    }

    fn collect_references(&self, out: &mut Vec<Reference>) {
        match self {
            Parsed::Text(t) => out.extend(t.references()),
            Parsed::Array(a) => a.iter().for_each(|v| v.collect_references(out)),
            Parsed::Object(o) => o.iter().for_each(|(_, v)| v.collect_references(out)),
            Parsed::Value(_) => {}
        }
    }
}

/// A condition such as `{{create_pr.success}} == true`: one expression in which `{{...}}` acts as
/// parentheses, so `{{a.ok}} && {{b.count}} > 0` and `a.ok && b.count > 0` mean the same.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(Expr);

impl Condition {
    pub fn parse(input: &str) -> Result<Condition, ParseError> {
        let mut p = Parser::new(input, 0, false);
        let expr = p.expr()?;
        p.expect(&Token::End, "the end of the condition")?;
        Ok(Condition(expr))
    }

    /// Whether the condition holds: its value is truthy (not false, null, 0, "", [] or {}).
    pub fn holds(&self, scope: &dyn Scope) -> Result<bool, EvalError> {
        self.0.eval(scope).map(|v| truthy(&v))
    }

    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        self.0.references(false, &mut out);
        out
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl Expr {
    /// The expression's value in `scope`.
    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Path(p) => scope.resolve(p)?,
            Expr::Not(e) => Value::Bool(!truthy(&e.eval(scope)?)),
            Expr::If(c, a, b) => {
                if truthy(&c.eval(scope)?) {
                    a.eval(scope)?
                } else {
                    b.eval(scope)?
                }
            }
            Expr::Default(options) => {
                let (last, first) = options.split_last().expect("a value and its fallbacks");
                for e in first {
                    match e.eval(scope) {
                        Ok(Value::Null) | Err(EvalError::Missing { .. }) => {}
                        other => return other,
                    }
                }
                last.eval(scope)?
            }
            Expr::Any(terms) => {
                for t in terms {
                    if truthy(&t.eval(scope)?) {
                        return Ok(Value::Bool(true));
                    }
                }
                Value::Bool(false)
            }
            Expr::All(terms) => {
                for t in terms {
                    if !truthy(&t.eval(scope)?) {
                        return Ok(Value::Bool(false));
                    }
                }
                Value::Bool(true)
            }
            Expr::Binary(op, a, b) => Value::Bool(compare(*op, &a.eval(scope)?, &b.eval(scope)?)?),
        })
    }

    fn references(&self, optional: bool, out: &mut Vec<Reference>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path(path) => out.push(Reference {
                path: path.clone(),
                optional,
            }),
            Expr::Not(e) => e.references(optional, out),
            Expr::Binary(_, a, b) => {
                a.references(optional, out);
                b.references(optional, out);
            }
            Expr::Any(terms) | Expr::All(terms) => {
                for t in terms {
                    t.references(optional, out);
                }
            }
            Expr::If(c, a, b) => {
                c.references(optional, out);
                a.references(optional, out);
                b.references(optional, out);
            }
            Expr::Default(options) => {
                let (last, first) = options.split_last().expect("a value and its fallbacks");
                for e in first {
                    e.references(true, out);
                }
                last.references(optional, out);
            }
        }
    }
}

fn compare(op: BinOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let order = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    Ok(match (op, order) {
        (BinOp::Eq, Some(o)) => o == Ordering::Equal,
        (BinOp::Ne, Some(o)) => o != Ordering::Equal,
        (BinOp::Eq, None) => a == b,
        (BinOp::Ne, None) => a != b,
        (BinOp::Lt, Some(o)) => o == Ordering::Less,
        (BinOp::Gt, Some(o)) => o == Ordering::Greater,
        (BinOp::Le, Some(o)) => o != Ordering::Greater,
        (BinOp::Ge, Some(o)) => o != Ordering::Less,
        (_, None) => {
            return Err(EvalError::Type(format!(
                "cannot order {} and {}",
                kind(a),
                kind(b)
            )));
        }
        (BinOp::And | BinOp::Or, _) => unreachable!("parsed as Any and All"),
    })
}

/// The JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(Number),
    Open,
    Close,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Question,
    Colon,
    Pipe,
    Bang,
    Minus,
    Op(BinOp),
    End,
}

/// A recursive-descent parser that lexes as it goes, so that a placeholder ends at the first
/// `}}` outside a string literal.
struct Parser<'a> {
    input: &'a str,
    pos: usize,
    /// Inside a placeholder of a [`Text`]: `{{` may not nest.
    placeholder: bool,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, pos: usize, placeholder: bool) -> Parser<'a> {
        Parser {
            input,
            pos,
            placeholder,
            depth: 0,
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            input: self.input.to_string(),
            at: self.input[..at.min(self.input.len())].chars().count(),
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        let rest = &self.input[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next token and the position after it, without consuming it.
    fn lex(&self) -> Result<(Token, usize), ParseError> {
        let rest = &self.input[self.pos..];
        let two = |t: Token| Ok((t, self.pos + 2));
        let one = |t: Token| Ok((t, self.pos + 1));
        let Some(c) = rest.chars().next() else {
            return Ok((Token::End, self.pos));
        };
        match c {
            '{' if rest.starts_with("{{") => two(Token::Open),
            '}' if rest.starts_with("}}") => two(Token::Close),
            '=' if rest.starts_with("==") => two(Token::Op(BinOp::Eq)),
            '!' if rest.starts_with("!=") => two(Token::Op(BinOp::Ne)),
            '<' if rest.starts_with("<=") => two(Token::Op(BinOp::Le)),
            '>' if rest.starts_with(">=") => two(Token::Op(BinOp::Ge)),
            '&' if rest.starts_with("&&") => two(Token::Op(BinOp::And)),
            '|' if rest.starts_with("||") => two(Token::Op(BinOp::Or)),
            '<' => one(Token::Op(BinOp::Lt)),
            '>' => one(Token::Op(BinOp::Gt)),
            '!' => one(Token::Bang),
            '|' => one(Token::Pipe),
            '(' => one(Token::LParen),
            ')' => one(Token::RParen),
            '[' => one(Token::LBracket),
            ']' => one(Token::RBracket),
            '.' => one(Token::Dot),
            '?' => one(Token::Question),
            ':' => one(Token::Colon),
            '-' => one(Token::Minus),
            '\'' | '"' => self.lex_string(c),
            '0'..='9' => {
                let len = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(rest.len());
                let text = &rest[..len];
                let number = text
                    .parse::<u64>()
                    .ok()
                    .map(Number::from)
                    .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
                    .ok_or_else(|| self.error(self.pos, format!("bad number {text:?}")))?;
                Ok((Token::Num(number), self.pos + len))
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                Ok((Token::Ident(rest[..len].to_string()), self.pos + len))
            }
            c => Err(self.error(self.pos, format!("unexpected {c:?}"))),
        }
    }

    fn lex_string(&self, quote: char) -> Result<(Token, usize), ParseError> {
        let mut out = String::new();
        let mut chars = self.input[self.pos + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => return Ok((Token::Str(out), self.pos + 1 + i + 1)),
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.error(self.pos, "unclosed string"))
    }

    fn peek(&mut self) -> Result<Token, ParseError> {
        self.skip_space();
        self.lex().map(|(t, _)| t)
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        self.skip_space();
        let (t, end) = self.lex()?;
        self.pos = end;
        Ok(t)
    }

    fn expect(&mut self, want: &Token, what: &str) -> Result<(), ParseError> {
        self.skip_space();
        let at = self.pos;
        let got = self.next()?;
        if &got == want {
            Ok(())
        } else if got == Token::End {
            Err(self.error(at, format!("expected {what}, found the end")))
        } else {
            Err(self.error(at, format!("expected {what}")))
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(self.pos, "expression nested too deeply"));
        }
        let cond = self.binary(0)?;
        let expr = if self.peek()? == Token::Question {
            self.next()?;
            let then = self.expr()?;
            self.expect(&Token::Colon, "':' of '? :'")?;
            let otherwise = self.expr()?;
            Expr::If(Box::new(cond), Box::new(then), Box::new(otherwise))
        } else {
            cond
        };
        self.depth -= 1;
        Ok(expr)
    }

    /// Binary operators by precedence: `||`, then `&&`, then comparisons (not chained).
    fn binary(&mut self, level: u8) -> Result<Expr, ParseError> {
        if level == 2 {
            let left = self.unary()?;
            if let Token::Op(op) = self.peek()?
                && !matches!(op, BinOp::And | BinOp::Or)
            {
                self.next()?;
                let right = self.unary()?;
                return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
            }
            return Ok(left);
        }
        let op = if level == 0 { BinOp::Or } else { BinOp::And };
        let mut terms = vec![self.binary(level + 1)?];
        while self.peek()? == Token::Op(op) {
            self.next()?;
            terms.push(self.binary(level + 1)?);
        }
        Ok(match (terms.len(), op) {
            (1, _) => terms.pop().expect("one term"),
            (_, BinOp::Or) => Expr::Any(terms),
            _ => Expr::All(terms),
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek()? == Token::Bang {
            self.next()?;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error(self.pos, "expression nested too deeply"));
            }
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        let mut options = vec![self.primary()?];
        while self.peek()? == Token::Pipe {
            self.next()?;
            let at = self.pos;
            match self.next()? {
                Token::Ident(f) if f == "default" => {}
                _ => return Err(self.error(at, "expected 'default' after '|'")),
            }
            self.expect(&Token::Colon, "':' after 'default'")?;
            options.push(self.primary()?);
        }
        Ok(match options.len() {
            1 => options.pop().expect("one value"),
            _ => Expr::Default(options),
        })
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.skip_space();
        let at = self.pos;
        match self.next()? {
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Num(n) => Ok(Expr::Literal(Value::Number(n))),
            Token::Minus => match self.next()? {
                Token::Num(n) => {
                    let negative = n
                        .as_i64()
                        .and_then(|i| i.checked_neg())
                        .map(Number::from)
                        .or_else(|| n.as_f64().and_then(|f| Number::from_f64(-f)));
                    negative
                        .map(|n| Expr::Literal(Value::Number(n)))
                        .ok_or_else(|| self.error(at, "bad number"))
                }
                _ => Err(self.error(at, "expected a number after '-'")),
            },
            Token::Ident(word) => Ok(match word.as_str() {
                "true" => Expr::Literal(Value::Bool(true)),
                "false" => Expr::Literal(Value::Bool(false)),
                "null" => Expr::Literal(Value::Null),
                _ => Expr::Path(self.path(word)?),
            }),
            Token::LParen => {
                let e = self.expr()?;
                self.expect(&Token::RParen, "')'")?;
                Ok(e)
            }
            Token::Open if !self.placeholder => {
                let e = self.expr()?;
                self.expect(&Token::Close, "'}}'")?;
                Ok(e)
            }
            Token::Open => Err(self.error(at, "'{{' inside a placeholder")),
            Token::End => Err(self.error(at, "expected a value, found the end")),
            _ => Err(self.error(at, "expected a value")),
        }
    }

    fn path(&mut self, root: String) -> Result<Path, ParseError> {
        let mut segments = Vec::new();
        loop {
            // No spaces inside a path: `a . b` is not a path.
            match self.input[self.pos..].chars().next() {
                Some('.') => {
                    self.pos += 1;
                    let at = self.pos;
                    let rest = &self.input[at..];
                    let digits = rest
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    if digits > 0 {
                        // `items.0` as in some template languages: an index.
                        let i = rest[..digits]
                            .parse()
                            .map_err(|_| self.error(at, "index too large"))?;
                        self.pos += digits;
                        segments.push(Segment::Index(i));
                        continue;
                    }
                    match self.lex()? {
                        (Token::Ident(k), end) => {
                            self.pos = end;
                            segments.push(Segment::Key(k));
                        }
                        _ => return Err(self.error(at, "expected a name after '.'")),
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    let at = self.pos;
                    match self.next()? {
                        Token::Num(n) if n.is_u64() => {
                            let i = usize::try_from(n.as_u64().unwrap_or(u64::MAX))
                                .map_err(|_| self.error(at, "index too large"))?;
                            segments.push(Segment::Index(i));
                        }
                        Token::Str(k) => segments.push(Segment::Key(k)),
                        _ => return Err(self.error(at, "expected an index or a quoted key")),
                    }
                    self.expect(&Token::RBracket, "']'")?;
                }
                _ => return Ok(Path { root, segments }),
            }
        }
    }
}

/// Follows `segments` from `value`, the value at `path.root`; errors name `path` and how far
/// it led.
pub fn walk(value: &Value, path: &Path, segments: &[Segment]) -> Result<Value, EvalError> {
    let mut here = value;
    let mut walked = Path {
        root: path.root.clone(),
        segments: Vec::new(),
    };
    for s in segments {
        let next = match (s, here) {
            (Segment::Key(k), Value::Object(o)) => o.get(k).ok_or_else(|| {
                let keys: Vec<&str> = o.keys().map(String::as_str).take(10).collect();
                format!(
                    "{walked} has no key {k:?} (it has: {})",
                    if keys.is_empty() {
                        "nothing".to_string()
                    } else {
                        keys.join(", ")
                    }
                )
            }),
            (Segment::Index(i), Value::Array(a)) => a
                .get(*i)
                .ok_or_else(|| format!("{walked} has {} items, no [{i}]", a.len())),
            (Segment::Key(k), v) => {
                Err(format!("{walked} is {}, not an object with {k:?}", kind(v)))
            }
            (Segment::Index(i), v) => {
                Err(format!("{walked} is {}, not an array with [{i}]", kind(v)))
            }
        };
        here = next.map_err(|reason| EvalError::Missing {
            path: path.to_string(),
            reason,
        })?;
        walked.segments.push(s.clone());
    }
    Ok(here.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Vars(Value);

    impl Scope for Vars {
        fn resolve(&self, path: &Path) -> Result<Value, EvalError> {
            let root = self.0.get(&path.root).ok_or_else(|| EvalError::Missing {
                path: path.to_string(),
                reason: format!("{} is not set", path.root),
            })?;
            walk(root, path, &path.segments)
        }
    }

    fn scope() -> Vars {
        Vars(json!({
            "repo": "acme/app",
            "n": 3,
            "list": {"issues": [{"number": 7, "title": "Crash", "labels": ["bug", "p1"]}], "success": true},
            "flag": false,
            "odd key": {"a-b": 1},
            "empty": null
        }))
    }

    fn render(s: &str) -> Result<Value, EvalError> {
        Text::parse(s).unwrap().render(&scope())
    }

    #[test]
    fn single_placeholders_keep_their_type() {
        assert_eq!(render("{{n}}").unwrap(), json!(3));
        assert_eq!(
            render("{{ list.issues[0].labels }}").unwrap(),
            json!(["bug", "p1"])
        );
        assert_eq!(render("{{list.issues.0.number}}").unwrap(), json!(7));
        assert_eq!(render("{{list.success}}").unwrap(), json!(true));
        assert_eq!(render("{{empty}}").unwrap(), json!(null));
    }

    #[test]
    fn embedded_placeholders_become_text() {
        assert_eq!(
            render("Fix #{{list.issues[0].number}}: {{list.issues[0].title}}").unwrap(),
            json!("Fix #7: Crash")
        );
        assert_eq!(
            render("labels={{list.issues[0].labels}}").unwrap(),
            json!("labels=[\"bug\",\"p1\"]")
        );
        assert_eq!(
            render("no placeholders }} here").unwrap(),
            json!("no placeholders }} here")
        );
    }

    #[test]
    fn defaults_and_ternaries() {
        assert_eq!(render("{{labels|default:'bug'}}").unwrap(), json!("bug"));
        assert_eq!(render("{{repo|default:'x'}}").unwrap(), json!("acme/app"));
        assert_eq!(render("{{empty|default:5}}").unwrap(), json!(5));
        assert_eq!(render("{{list.nope|default:'}}'}}").unwrap(), json!("}}"));
        assert_eq!(render("{{flag ? 'yes' : 'no'}}").unwrap(), json!("no"));
        assert_eq!(render("{{n > 2 ? 'many' : 'few'}}").unwrap(), json!("many"));
        assert_eq!(
            render("{{list.issues[0][\"title\"]}}").unwrap(),
            json!("Crash")
        );
    }

    #[test]
    fn missing_paths_say_where_the_path_ends() {
        assert_eq!(
            render("{{list.issues[3].number}}").unwrap_err().to_string(),
            "list.issues[3].number: list.issues has 1 items, no [3]"
        );
        assert_eq!(
            render("{{list.issues[0].url}}").unwrap_err().to_string(),
            "list.issues[0].url: list.issues[0] has no key \"url\" (it has: number, title, labels)"
        );
        assert_eq!(
            render("{{repo.owner}}").unwrap_err().to_string(),
            "repo.owner: repo is a string, not an object with \"owner\""
        );
        assert_eq!(
            render("{{nope}}").unwrap_err().to_string(),
            "nope: nope is not set"
        );
    }

    #[test]
    fn conditions() {
        let holds = |s: &str| Condition::parse(s).unwrap().holds(&scope()).unwrap();
        assert!(holds("{{list.success}} == true"));
        assert!(!holds("{{list.success}} != true"));
        assert!(holds("{{n}} > 2 && !{{flag}}"));
        assert!(holds("(flag || n >= 3) && repo == 'acme/app'"));
        assert!(holds("{{list.issues[0].number}} == 7.0"));
        assert!(!holds("{{flag}}"));
        assert!(holds("n < 10 && n <= 3 && -1 < n"));
        assert!(holds("!(n == 4)"));
        let err = Condition::parse("n > 'a'")
            .unwrap()
            .holds(&scope())
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot order a number and a string");
    }

    #[test]
    fn parse_errors_point_at_the_problem() {
        let e = Text::parse("Fix {{list.issues[0].number").unwrap_err();
        assert_eq!(e.message, "expected '}}', found the end");
        assert_eq!(e.at, 27);
        assert_eq!(Text::parse("{{a b}}").unwrap_err().message, "expected '}}'");
        assert_eq!(
            Text::parse("{{ {{a}} }}").unwrap_err().message,
            "'{{' inside a placeholder"
        );
        assert_eq!(
            Condition::parse("a ==").unwrap_err().message,
            "expected a value, found the end"
        );
        assert_eq!(
            Condition::parse("a == 1 == 2").unwrap_err().message,
            "expected the end of the condition"
        );
        assert_eq!(
            Condition::parse("a |upper").unwrap_err().message,
            "expected 'default' after '|'"
        );
        assert_eq!(
            Condition::parse("'abc").unwrap_err().message,
            "unclosed string"
        );
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            Condition::parse(&deep).unwrap_err().message,
            "expression nested too deeply"
        );
        let nots = format!("{}a", "!".repeat(100));
        assert_eq!(
            Condition::parse(&nots).unwrap_err().message,
            "expression nested too deeply"
        );
    }

    #[test]
    fn chains_of_any_length_do_not_reach_the_stack() {
        let n = 20_000;
        let ors = format!("{}n == 3", "false || ".repeat(n));
        assert!(Condition::parse(&ors).unwrap().holds(&scope()).unwrap());
        let ands = format!("{{{{{}flag}}}}", "true && ".repeat(n));
        assert_eq!(render(&ands).unwrap(), json!(false));
        let defaults = format!(
            "{{{{nope{}}}}}",
            "|default:nope".repeat(n) + "|default:'end'"
        );
        assert_eq!(render(&defaults).unwrap(), json!("end"));
        let strict = format!("{{{{nope{}}}}}", "|default:nope".repeat(3));
        assert_eq!(
            render(&strict).unwrap_err().to_string(),
            "nope: nope is not set"
        );
    }

    #[test]
    fn escaped_text_renders_as_itself() {
        for s in [
            "{{secret|default:'PWNED'}}",
            "{{ 1 > 0 ? 'EVAL-YES' : 'no' }}",
            "{{",
            "{{{",
            "a }} {{b",
            "'{{'",
        ] {
            let escaped = escape(s);
            assert_eq!(
                render(&escaped).unwrap(),
                json!(s),
                "{s:?} escaped {escaped:?}"
            );
            assert!(Text::parse(&escaped).unwrap().references().is_empty());
        }
        assert!(matches!(escape("plain {text}"), Cow::Borrowed(_)));
        assert_eq!(
            escape_value(&json!({"{{k}}": ["{{x}}", 1]})),
            json!({"{{k}}": ["{{'{{'}}x}}", 1]})
        );
    }

    #[test]
    fn a_quoted_key_reads_back_as_itself() {
        for key in ["odd key", "a\"b", "back\\slash", "new\nline", "}}", "it's"] {
            let path = Path {
                root: "r".into(),
                segments: vec![Segment::Key(key.into())],
            };
            let text = format!("{{{{{path}}}}}");
            let parsed = Text::parse(&text).unwrap().references();
            assert_eq!(parsed[0].path, path, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_escaped_string_renders_as_itself(s in "(\\{|\\}|'|\"|\\\\|[a-z |:?]){0,40}") {
            proptest::prop_assert_eq!(render(&escape(&s)).unwrap(), json!(s));
        }
    }

    #[test]
    fn references_know_what_is_optional() {
        let t = Text::parse("{{a.b|default:c}} {{d ? e[0] : 'x'}}").unwrap();
        let refs: Vec<(String, bool)> = t
            .references()
            .into_iter()
            .map(|r| (r.path.to_string(), r.optional))
            .collect();
        assert_eq!(
            refs,
            [
                ("a.b".into(), true),
                ("c".into(), false),
                ("d".into(), false),
                ("e[0]".into(), false)
            ]
        );
    }
}
