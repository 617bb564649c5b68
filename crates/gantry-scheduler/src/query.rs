//! The ECS cluster query language: `subject operator [argument]`, combined with `and`/`&&`,
//! `or`/`||`, `not`/`!` and parentheses. Used by `memberOf` constraints and by
//! ListContainerInstances' `filter`.
//!
//! Subjects: `agentConnected`, `agentVersion`, `attribute:<name>`, `ec2InstanceId`,
//! `registeredAt`, `runningTasksCount`, `task:group`. Operators: `==`/`equals`,
//! `!=`/`not_equals`, `>`/`greater_than`, `>=`/`greater_than_equal`, `<`/`less_than`,
//! `<=`/`less_than_equal`, `exists`, `!exists`/`not_exists`, `in`, `!in`/`not_in`,
//! `=~`/`matches`, `!~`/`not_matches`.

use regex::Regex;
use std::cmp::Ordering;
use std::fmt;

/// What an expression is evaluated against: one container instance.
pub trait Subject {
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
    fn ec2_instance_id(&self) -> Option<&str>;
    /// Seconds since the epoch.
    fn registered_at(&self) -> f64;
    fn running_tasks_count(&self) -> u32;
    /// Whether a task of `group` runs (or is placed) on the instance.
    fn has_group(&self, group: &str) -> bool;
    /// Groups of the tasks on the instance.
    fn groups(&self) -> Vec<&str>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    AgentConnected,
    AgentVersion,
    Attribute(String),
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: Field,
        op: Op,
        values: Vec<String>,
        regex: Option<Regex>,
    },
}

/// A malformed expression: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// An operator written with symbols.
    Sym(&'static str),
    Word(String),
    /// A quoted string.
    Quoted(String),
}

const SYMBOLS: [&str; 12] = [
    "==", "!=", ">=", "<=", "=~", "!~", "&&", "||", ">", "<", "!", "=",
];

fn lex(s: &str) -> Result<Vec<Tok>, ParseError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => out.push(Tok::LParen),
            ')' => out.push(Tok::RParen),
            '[' => out.push(Tok::LBracket),
            ']' => out.push(Tok::RBracket),
            ',' => out.push(Tok::Comma),
            '\'' | '"' => {
                let close = chars[i + 1..].iter().position(|x| *x == c).ok_or_else(|| {
                    ParseError(format!("unterminated quote starting at position {}", i + 1))
                })?;
                out.push(Tok::Quoted(chars[i + 1..i + 1 + close].iter().collect()));
                i += close + 2;
                continue;
            }
            _ => {
                let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
                if let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
                    if *sym == "=" {
                        return Err(ParseError(format!(
                            "unknown operator '=' at position {}; use ==",
                            i + 1
                        )));
                    }
                    out.push(Tok::Sym(sym));
                    i += sym.chars().count();
                    continue;
                }
                let start = i;
                while i < chars.len() {
                    let ch = chars[i];
                    if ch.is_whitespace() || "()[],'\"".contains(ch) {
                        break;
                    }
                    // An operator glued to a word ends it (`a==b`), but `*`, `.`, `-`, `:` belong to it.
                    let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                    if i > start && SYMBOLS.iter().any(|s| s.len() == 2 && two.starts_with(*s)) {
                        break;
                    }
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
                continue;
            }
        }
        i += 1;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Parentheses and `not`s nest at most this deep.
const MAX_DEPTH: usize = 64;

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "the end of the expression".into(),
        Some(Tok::LParen) => "'('".into(),
        Some(Tok::RParen) => "')'".into(),
        Some(Tok::LBracket) => "'['".into(),
        Some(Tok::RBracket) => "']'".into(),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::Sym(s)) => format!("'{s}'"),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Quoted(w)) => format!("'{w}'"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Sym("||")) || self.is_word("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        while self.peek() == Some(&Tok::Sym("&&")) || self.is_word("and") {
            self.pos += 1;
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            )));
        }
        let r = self.not_inner();
        self.depth -= 1;
        r
    }

    fn not_inner(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Tok::Sym("!")) || self.is_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            match self.next() {
                Some(Tok::RParen) => return Ok(e),
                other => {
                    return Err(ParseError(format!(
                        "expected ')' but found {}",
                        describe(other.as_ref())
                    )))
                }
            }
        }
        self.cmp()
    }

    fn value(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            other => Err(ParseError(format!(
                "expected a value but found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let subject = match self.next() {
            Some(Tok::Word(w)) => w,
            other => {
                return Err(ParseError(format!(
                    "expected a subject but found {}",
                    describe(other.as_ref())
                )))
            }
        };
        let field = match subject.as_str() {
            "agentConnected" => Field::AgentConnected,
            "agentVersion" => Field::AgentVersion,
            "ec2InstanceId" => Field::Ec2InstanceId,
            "registeredAt" => Field::RegisteredAt,
            "runningTasksCount" => Field::RunningTasksCount,
            "task:group" => Field::TaskGroup,
            s => match s.strip_prefix("attribute:") {
                Some(name) if !name.is_empty() => Field::Attribute(name.to_string()),
                _ => {
                    return Err(ParseError(format!(
                        "unknown subject '{s}': use attribute:<name>, agentConnected, agentVersion, ec2InstanceId, registeredAt, runningTasksCount or task:group"
                    )))
                }
            },
        };
        let op = match self.next() {
            Some(Tok::Sym("==")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym("=~")) => Op::Matches,
            Some(Tok::Sym("!~")) => Op::NotMatches,
            Some(Tok::Sym("!")) => match self.next() {
                Some(Tok::Word(w)) if w == "exists" => Op::NotExists,
                Some(Tok::Word(w)) if w == "in" => Op::NotIn,
                other => {
                    return Err(ParseError(format!(
                        "expected 'exists' or 'in' after '!' but found {}",
                        describe(other.as_ref())
                    )))
                }
            },
            Some(Tok::Word(w)) => match w.as_str() {
                "equals" => Op::Eq,
                "not_equals" => Op::Ne,
                "greater_than" => Op::Gt,
                "greater_than_equal" => Op::Ge,
                "less_than" => Op::Lt,
                "less_than_equal" => Op::Le,
                "exists" => Op::Exists,
                "not_exists" => Op::NotExists,
                "in" => Op::In,
                "not_in" => Op::NotIn,
                "matches" => Op::Matches,
                "not_matches" => Op::NotMatches,
                other => {
                    return Err(ParseError(format!(
                        "unknown operator '{other}' after '{subject}'"
                    )))
                }
            },
            other => {
                return Err(ParseError(format!(
                    "expected an operator after '{subject}' but found {}",
                    describe(other.as_ref())
                )))
            }
        };
        let values = match op {
            Op::Exists | Op::NotExists => Vec::new(),
            Op::In | Op::NotIn => {
                match self.next() {
                    Some(Tok::LBracket) => {}
                    other => {
                        return Err(ParseError(format!(
                            "expected '[' after 'in' but found {}",
                            describe(other.as_ref())
                        )))
                    }
                }
                let mut vs = Vec::new();
                loop {
                    vs.push(self.value()?);
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RBracket) => break,
                        other => {
                            return Err(ParseError(format!(
                                "expected ',' or ']' in a list but found {}",
                                describe(other.as_ref())
                            )))
                        }
                    }
                }
                vs
            }
            _ => vec![self.value()?],
        };
        if matches!(op, Op::Matches | Op::NotMatches) {
            // The pattern must stand on its own, so that it cannot escape the anchors around it.
            Regex::new(&values[0]).map_err(|e| {
                ParseError(format!("invalid regular expression '{}': {e}", values[0]))
            })?;
        }
        let regex = match op {
            Op::Matches | Op::NotMatches => {
                Some(Regex::new(&format!("^(?:{})$", values[0])).map_err(|e| {
                    ParseError(format!("invalid regular expression '{}': {e}", values[0]))
                })?)
            }
            _ => None,
        };
        if matches!(field, Field::TaskGroup)
            && !matches!(
                op,
                Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Exists | Op::NotExists
            )
        {
            return Err(ParseError(
                "task:group supports ==, !=, in, not_in, exists and not_exists".into(),
            ));
        }
        Ok(Expr::Cmp {
            field,
            op,
            values,
            regex,
        })
    }
}

/// A parsed expression with its source text (which keys memoised results).
#[derive(Debug, Clone)]
pub struct Query {
    pub source: String,
    pub expr: Expr,
}

impl Query {
    pub fn parse(s: &str) -> Result<Query, ParseError> {
        Ok(Query {
            source: s.trim().to_string(),
            expr: parse(s)?,
        })
    }
}

/// Parses an expression.
pub fn parse(s: &str) -> Result<Expr, ParseError> {
    if s.trim().is_empty() {
        return Err(ParseError("the expression is empty".into()));
    }
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(ParseError(format!(
            "unexpected {} after a complete expression",
            describe(p.peek())
        )));
    }
    Ok(e)
}

/// Compares versions (`1.10.0` > `1.9.2`), numbers, or else strings.
fn compare(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    let parts = |s: &str| -> Option<Vec<u64>> {
        s.trim_start_matches('v')
            .split('.')
            .map(|p| p.parse().ok())
            .collect()
    };
    if let (Some(x), Some(y)) = (parts(a), parts(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

/// `2018-06-18`, `2018-06-18T22:28:28Z` (or with fractional seconds) as seconds since the
/// epoch; calendar-checked (`2018-02-31` is no date).
pub fn parse_date(s: &str) -> Option<f64> {
    let (date, clock) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some()
        || [y, m, day]
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let y: i32 = y.parse().ok().filter(|y| (1..=9999).contains(y))?;
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y, month, day.parse().ok()?).ok()?;
    let mut secs = date.midnight().assume_utc().unix_timestamp() as f64;
    if let Some(t) = clock {
        let mut hms = t.split(':');
        let (h, mi, se) = (hms.next()?, hms.next()?, hms.next()?);
        if hms.next().is_some() {
            return None;
        }
        let (h, mi): (u8, u8) = (h.parse().ok()?, mi.parse().ok()?);
        let se: f64 = se.parse().ok().filter(|s: &f64| (0.0..60.0).contains(s))?;
        time::Time::from_hms(h, mi, 0).ok()?;
        secs += f64::from(h) * 3600.0 + f64::from(mi) * 60.0 + se;
    }
    Some(secs)
}

fn cmp_values(field: &Field, have: &str, want: &str) -> Ordering {
    if *field == Field::RegisteredAt {
        if let (Ok(h), Some(w)) = (have.parse::<f64>(), parse_date(want)) {
            return h.partial_cmp(&w).unwrap_or(Ordering::Equal);
        }
    }
    compare(have, want)
}

impl Expr {
    /// Whether the instance satisfies the expression.
    pub fn eval(&self, s: &dyn Subject) -> bool {
        match self {
            Expr::And(a, b) => a.eval(s) && b.eval(s),
            Expr::Or(a, b) => a.eval(s) || b.eval(s),
            Expr::Not(a) => !a.eval(s),
            Expr::Cmp {
                field,
                op,
                values,
                regex,
            } => {
                if *field == Field::TaskGroup {
                    let any = |v: &String| s.has_group(v);
                    return match op {
                        Op::Eq => values.iter().any(any),
                        Op::Ne => !values.iter().any(any),
                        Op::In => values.iter().any(any),
                        Op::NotIn => !values.iter().any(any),
                        Op::Exists => !s.groups().is_empty(),
                        Op::NotExists => s.groups().is_empty(),
                        _ => false,
                    };
                }
                let owned;
                let have: Option<&str> = match field {
                    Field::Attribute(name) => match s.attribute(name) {
                        None => None,
                        Some(v) => Some(v.unwrap_or("")),
                    },
                    Field::AgentConnected => {
                        Some(if s.agent_connected() { "true" } else { "false" })
                    }
                    Field::AgentVersion => s.agent_version(),
                    Field::Ec2InstanceId => s.ec2_instance_id(),
                    Field::RegisteredAt => {
                        owned = s.registered_at().to_string();
                        Some(owned.as_str())
                    }
                    Field::RunningTasksCount => {
                        owned = s.running_tasks_count().to_string();
                        Some(owned.as_str())
                    }
                    Field::TaskGroup => None,
                };
                let Some(have) = have else {
                    // A missing subject satisfies only the negative operators.
                    return matches!(op, Op::Ne | Op::NotIn | Op::NotExists | Op::NotMatches);
                };
                let want = values.first().map(String::as_str).unwrap_or("");
                match op {
                    Op::Exists => true,
                    Op::NotExists => false,
                    Op::Eq => cmp_values(field, have, want) == Ordering::Equal,
                    Op::Ne => cmp_values(field, have, want) != Ordering::Equal,
                    Op::Gt => cmp_values(field, have, want) == Ordering::Greater,
                    Op::Ge => cmp_values(field, have, want) != Ordering::Less,
                    Op::Lt => cmp_values(field, have, want) == Ordering::Less,
                    Op::Le => cmp_values(field, have, want) != Ordering::Greater,
                    Op::In => values
                        .iter()
                        .any(|v| cmp_values(field, have, v) == Ordering::Equal),
                    Op::NotIn => !values
                        .iter()
                        .any(|v| cmp_values(field, have, v) == Ordering::Equal),
                    Op::Matches => regex.as_ref().is_some_and(|r| r.is_match(have)),
                    Op::NotMatches => !regex.as_ref().is_some_and(|r| r.is_match(have)),
                }
            }
        }
    }

    /// Whether the result can change as tasks are placed (it looks at task groups or counts).
    pub fn depends_on_tasks(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.depends_on_tasks() || b.depends_on_tasks(),
            Expr::Not(a) => a.depends_on_tasks(),
            Expr::Cmp { field, .. } => matches!(field, Field::TaskGroup | Field::RunningTasksCount),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Inst {
        attrs: BTreeMap<String, Option<String>>,
        connected: bool,
        version: String,
        id: String,
        at: f64,
        running: u32,
        groups: Vec<String>,
    }

    impl Subject for Inst {
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.attrs.get(name).map(|v| v.as_deref())
        }
        fn agent_connected(&self) -> bool {
            self.connected
        }
        fn agent_version(&self) -> Option<&str> {
            Some(&self.version)
        }
        fn ec2_instance_id(&self) -> Option<&str> {
            Some(&self.id)
        }
        fn registered_at(&self) -> f64 {
            self.at
        }
        fn running_tasks_count(&self) -> u32 {
            self.running
        }
        fn has_group(&self, g: &str) -> bool {
            self.groups.iter().any(|x| x == g)
        }
        fn groups(&self) -> Vec<&str> {
            self.groups.iter().map(String::as_str).collect()
        }
    }

    fn inst(ty: &str, az: &str) -> Inst {
        let mut attrs = BTreeMap::new();
        attrs.insert("ecs.instance-type".to_string(), Some(ty.to_string()));
        attrs.insert("ecs.availability-zone".to_string(), Some(az.to_string()));
        attrs.insert("ecs.os-type".to_string(), Some("linux".to_string()));
        attrs.insert("stack".to_string(), Some("prod".to_string()));
        Inst {
            attrs,
            connected: true,
            version: "1.10.0".into(),
            id: "i-abcd1234".into(),
            at: parse_date("2018-06-18T22:28:28Z").unwrap(),
            running: 2,
            groups: vec!["service:production".into()],
        }
    }

    fn t(expr: &str, i: &Inst) -> bool {
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .eval(i)
    }

    /// The examples of the ECS cluster query language documentation.
    #[test]
    fn documentation_examples() {
        let t2 = inst("t2.small", "us-east-1a");
        let g2 = inst("g2.2xlarge", "us-east-1d");
        assert!(t(r"attribute:ecs.instance-type == t2.small", &t2));
        assert!(!t(r"attribute:ecs.instance-type == t2.small", &g2));
        assert!(t(
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            &t2
        ));
        assert!(!t(
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            &g2
        ));
        assert!(t("attribute:ecs.instance-type =~ g2.*", &g2));
        assert!(!t("attribute:ecs.instance-type =~ g2.*", &t2));
        assert!(t(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
            &t2
        ));
        assert!(!t(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
            &g2
        ));
        assert!(t("ec2InstanceId in ['i-abcd1234', 'i-wxyz9876']", &t2));
        assert!(t("agentConnected == true", &t2));
        assert!(!t("agentConnected == false", &t2));
        assert!(
            t("agentVersion >= 1.9.2", &t2),
            "versions compare numerically"
        );
        assert!(!t("agentVersion < 1.2.0", &t2));
        assert!(t("runningTasksCount > 1", &t2));
        assert!(t("runningTasksCount <= 2", &t2));
        assert!(t("registeredAt < 2019-01-01", &t2));
        assert!(t("registeredAt >= 2018-06-18T22:28:28Z", &t2));
        assert!(t("task:group == service:production", &t2));
        assert!(!t("not(task:group == service:production)", &t2));
        assert!(t("not(task:group == database)", &t2));
        assert!(t("attribute:stack exists", &t2));
        assert!(t("attribute:nope !exists", &t2));
        assert!(t("attribute:nope not_exists", &t2));
        assert!(t("attribute:ecs.os-type equals linux", &t2));
        assert!(t("attribute:ecs.instance-type matches t2\\..* or attribute:ecs.instance-type matches c4\\..*", &t2));
        assert!(t("(attribute:ecs.instance-type == t2.micro || attribute:ecs.instance-type == t2.small) && attribute:ecs.availability-zone == us-east-1a", &t2));
        assert!(t(
            "attribute:ecs.availability-zone not_in [us-east-1d]",
            &t2
        ));
        assert!(t("attribute:ecs.availability-zone !in [us-east-1d]", &t2));
        assert!(t("attribute:ecs.instance-type !~ g2.*", &t2));
        assert!(
            t("attribute:ecs.instance-type==t2.small", &t2),
            "operators need no spaces"
        );
        assert!(t("! attribute:ecs.instance-type == g2.2xlarge", &t2));
    }

    #[test]
    fn hostile_input_is_refused_or_harmless() {
        let deep = format!("{}attribute:a == b{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).unwrap_err().0.contains("nests deeper"));
        let nots = format!("{}attribute:a == b", "not ".repeat(5000));
        assert!(parse(&nots).is_err());
        let huge = parse("registeredAt > 99999999999999-01-01").unwrap();
        assert!(!huge.eval(&inst("t2.small", "a")));
        assert_eq!(parse_date("99999999999999-01-01"), None);
        assert_eq!(parse_date("2018-02-31"), None);
        assert_eq!(parse_date("2019-02-29T00:00:00Z"), None);
        assert_eq!(parse_date("2020-02-29"), Some(1_582_934_400.0));
        assert_eq!(parse_date("2018-06-18T22:28:28.5Z"), Some(1_529_360_908.5));
        assert_eq!(parse_date("2018-06-18T24:00:00Z"), None);
    }

    #[test]
    fn malformed_expressions_are_explained() {
        for (expr, want) in [
            ("", "empty"),
            ("attribute:a ==", "expected a value"),
            ("attribute:a = b", "use =="),
            ("color == red", "unknown subject"),
            ("attribute:a between b", "unknown operator 'between'"),
            ("attribute:a in b", "expected '['"),
            ("attribute:a in [b c]", "expected ',' or ']'"),
            ("(attribute:a == b", "expected ')'"),
            ("attribute:a == b c", "unexpected 'c'"),
            ("attribute:a =~ 'a('", "invalid regular expression"),
            ("attribute:a == 'b", "unterminated quote"),
            ("task:group > 3", "task:group supports"),
            ("attribute:a =~ 'a)|(.*'", "invalid regular expression"),
        ] {
            let e = parse(expr).expect_err(expr);
            assert!(e.0.contains(want), "{expr}: {e}");
        }
    }
}
