//! The command line as virsh 9.0 reads it: the tokenizer of its `"cmd1 args; cmd2 args"` string
//! form (`vshCommandStringGetArg`), and the option parser shared by both forms
//! (`vshCommandParse`), driven by each command's option table. Knows nothing of what commands do.

/// How an option takes its value (virsh's `vshCmdOptType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--flag`, no value.
    Bool,
    /// A required value, given positionally or as `--name value` (VSH_OT_DATA).
    Data,
    /// A string value (VSH_OT_STRING).
    String,
    /// A numeric value (VSH_OT_INT); checked when the command reads it.
    Int,
    /// The rest of the positional values (VSH_OT_ARGV), listed last.
    Argv,
}

/// One option of a command, as virsh 9.0 declares it.
#[derive(Debug)]
pub(crate) struct OptDef {
    /// The name, without `--`.
    pub(crate) name: &'static str,
    /// How it takes its value.
    pub(crate) kind: Kind,
    /// Parsing fails without it (VSH_OFLAG_REQ).
    pub(crate) required: bool,
    /// A bare word may fill it; false for VSH_OFLAG_REQ_OPT options, which need `--name`.
    pub(crate) positional: bool,
}

/// A boolean option.
pub(crate) const fn flag(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::Bool, required: false, positional: false }
}

/// A required value that may be given positionally (`<domain>`, `<file>`).
pub(crate) const fn data(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::Data, required: true, positional: true }
}

/// An optional string that a bare word may fill, in declaration order.
pub(crate) const fn string(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::String, required: false, positional: true }
}

/// An optional string that needs `--name value`.
pub(crate) const fn named_string(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::String, required: false, positional: false }
}

/// An optional number that a bare word may fill, in declaration order.
pub(crate) const fn int(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::Int, required: false, positional: true }
}

/// An optional number that needs `--name value`.
pub(crate) const fn named_int(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::Int, required: false, positional: false }
}

/// The remaining positional words.
pub(crate) const fn argv(name: &'static str) -> OptDef {
    OptDef { name, kind: Kind::Argv, required: false, positional: true }
}

/// Which module runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// `list`.
    List,
    /// define, start, destroy and the other state changes.
    Lifecycle,
    /// dominfo, domstate, domid, domname, domuuid, dumpxml.
    Info,
    /// snapshot-*.
    Snapshot,
    /// checkpoint-*.
    Checkpoint,
    /// event.
    Event,
    /// help, quit, exit: virsh's "Virsh itself" group, which needs no connection.
    Shell,
}

/// A command: its virsh name, options in virsh's declaration order (which decides where bare
/// words go) and the module that runs it.
#[derive(Debug)]
pub(crate) struct CmdDef {
    /// The command name.
    pub(crate) name: &'static str,
    /// The options, in virsh 9.0's order.
    pub(crate) opts: &'static [OptDef],
    /// The module that runs it.
    pub(crate) group: Group,
}

/// A parsed command: its definition and the options given, in order.
#[derive(Debug)]
pub(crate) struct Command {
    /// The definition.
    pub(crate) def: &'static CmdDef,
    /// (option index, value) pairs; booleans have no value.
    values: Vec<(usize, Option<String>)>,
}

impl Command {
    fn index(&self, name: &str) -> usize {
        self.def
            .opts
            .iter()
            .position(|opt| opt.name == name)
            .unwrap_or_else(|| panic!("command '{}' has no option --{name}", self.def.name))
    }

    /// Whether the option was given.
    pub(crate) fn has(&self, name: &str) -> bool {
        let index = self.index(name);
        self.values.iter().any(|(i, _)| *i == index)
    }

    /// The value of a string option, if given.
    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        let index = self.index(name);
        self.values.iter().find(|(i, _)| *i == index).and_then(|(_, value)| value.as_deref())
    }

    /// The value of a string option that must not be empty when given
    /// (virsh's `vshCommandOptStringReq`).
    pub(crate) fn string_req(&self, name: &str) -> anyhow::Result<Option<&str>> {
        match self.string(name) {
            Some("") => anyhow::bail!("Failed to get option '{name}': Option argument is empty"),
            value => Ok(value),
        }
    }

    /// Every value given to an argv option.
    pub(crate) fn argv(&self, name: &str) -> Vec<&str> {
        let index = self.index(name);
        self.values.iter().filter(|(i, _)| *i == index).filter_map(|(_, value)| value.as_deref()).collect()
    }

    /// An unsigned number option (virsh's `vshCommandOptULongLong`).
    pub(crate) fn u64(&self, name: &str) -> anyhow::Result<Option<u64>> {
        let Some(text) = self.string(name) else {
            return Ok(None);
        };
        let trimmed = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
        match digits.parse::<u64>() {
            Ok(value) if !digits.starts_with('+') => Ok(Some(value)),
            _ => anyhow::bail!("Numeric value '{text}' for <{name}> option is malformed or out of range"),
        }
    }

    /// Fails if any of these options, which rvirsh does not implement, was given.
    pub(crate) fn reject(&self, unsupported: &[&str]) -> anyhow::Result<()> {
        match unsupported.iter().find(|name| self.has(name)) {
            Some(name) => {
                anyhow::bail!("option --{name} of command '{}' is not supported by rvirsh", self.def.name)
            }
            None => Ok(()),
        }
    }
}

/// One token of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word (an argument, possibly empty).
    Arg(String),
    /// `;`, a newline or a comment: the end of one command.
    CommandEnd,
}

/// Splits virsh's string form into tokens, as `vshCommandStringGetArg` does: blanks separate,
/// `;` and newlines end a command, `#` at the start of a word comments to the end of the line,
/// single quotes are literal, double quotes allow `\` escapes. A syntax error ends the list.
fn tokenize(input: &str) -> Vec<Result<Token, String>> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut p = 0;
    loop {
        while p < chars.len()
            && (chars[p] == ' ' || chars[p] == '\t' || (chars[p] == '\\' && chars.get(p + 1) == Some(&'\n')))
        {
            p += if chars[p] == '\\' { 2 } else { 1 };
        }
        let Some(&first) = chars.get(p) else {
            return tokens;
        };
        if first == ';' || first == '\n' {
            p += 1;
            tokens.push(Ok(Token::CommandEnd));
            continue;
        }
        if first == '#' {
            while p < chars.len() && chars[p] != '\n' {
                p += 1;
            }
            p += usize::from(p < chars.len());
            tokens.push(Ok(Token::CommandEnd));
            continue;
        }
        let (mut single_quote, mut double_quote) = (false, false);
        let mut word = String::new();
        while let Some(&c) = chars.get(p) {
            if !single_quote && !double_quote && matches!(c, ' ' | '\t' | ';' | '\n') {
                break;
            }
            if !double_quote && c == '\'' {
                single_quote = !single_quote;
                p += 1;
                continue;
            } else if !single_quote && c == '\\' {
                p += 1;
                match chars.get(p) {
                    None => {
                        tokens.push(Err("dangling \\".to_owned()));
                        return tokens;
                    }
                    Some('\n') => {
                        p += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            } else if !single_quote && c == '"' {
                double_quote = !double_quote;
                p += 1;
                continue;
            }
            word.push(chars[p]);
            p += 1;
        }
        if double_quote {
            tokens.push(Err("missing \"".to_owned()));
            return tokens;
        }
        tokens.push(Ok(Token::Arg(word)));
    }
}

/// Finds a command's definition by name.
pub(crate) type Finder = fn(&str) -> Option<&'static CmdDef>;

/// Parses virsh's string form (one argument holding `;`-separated commands).
pub(crate) fn parse_string(input: &str, find: Finder) -> Result<Vec<Command>, String> {
    parse(tokenize(input), find)
}

/// Parses virsh's argv form (one command, one word per argument).
pub(crate) fn parse_argv(args: &[String], find: Finder) -> Result<Vec<Command>, String> {
    parse(args.iter().map(|arg| Ok(Token::Arg(arg.clone()))).collect(), find)
}

/// `vshCommandParse` of virsh 9.0: any error rejects the whole input, so nothing runs.
fn parse(tokens: Vec<Result<Token, String>>, find: Finder) -> Result<Vec<Command>, String> {
    let mut tokens = tokens.into_iter();
    let mut parsed = Vec::new();
    loop {
        let mut current: Option<Command> = None;
        // Options that still take a bare word, in declaration order; and options seen.
        let mut need_arg: Vec<bool> = Vec::new();
        let mut seen: Vec<bool> = Vec::new();
        let mut data_only = false;
        let ended = loop {
            let word = match tokens.next().transpose()? {
                None => break true,
                Some(Token::CommandEnd) => break false,
                Some(Token::Arg(word)) => word,
            };
            let Some(command) = current.as_mut() else {
                let def = find(&word).ok_or_else(|| format!("unknown command: '{word}'"))?;
                need_arg = def.opts.iter().map(|opt| opt.kind != Kind::Bool && opt.positional).collect();
                seen = vec![false; def.opts.len()];
                current = Some(Command { def, values: Vec::new() });
                continue;
            };
            let def = command.def;
            let bytes = word.as_bytes();
            let is_option =
                !data_only && bytes.len() > 2 && bytes.starts_with(b"--") && bytes[2].is_ascii_alphanumeric();
            if is_option {
                let (name, inline_value) = match word[2..].split_once('=') {
                    Some((name, value)) => (name, Some(value.to_owned())),
                    None => (&word[2..], None),
                };
                let index = def
                    .opts
                    .iter()
                    .position(|opt| opt.name == name)
                    .ok_or_else(|| format!("command '{}' doesn't support option --{name}", def.name))?;
                let opt = &def.opts[index];
                if seen[index] && opt.kind != Kind::Argv {
                    return Err(format!("option --{name} already seen"));
                }
                seen[index] = true;
                let value = if opt.kind == Kind::Bool {
                    if inline_value.is_some() {
                        return Err(format!("invalid '=' after option --{name}"));
                    }
                    None
                } else {
                    let value = match inline_value {
                        Some(value) => value,
                        None => match tokens.next().transpose()? {
                            Some(Token::Arg(value)) => value,
                            _ => {
                                let what = if opt.kind == Kind::Int { "number" } else { "string" };
                                return Err(format!("expected syntax: --{name} <{what}>"));
                            }
                        },
                    };
                    if opt.kind != Kind::Argv {
                        need_arg[index] = false;
                    }
                    Some(value)
                };
                command.values.push((index, value));
            } else if !data_only && word == "--" {
                data_only = true;
            } else {
                let index = need_arg
                    .iter()
                    .position(|need| *need)
                    .ok_or_else(|| format!("unexpected data '{word}'"))?;
                if def.opts[index].kind != Kind::Argv {
                    need_arg[index] = false;
                }
                seen[index] = true;
                command.values.push((index, Some(word)));
            }
        };
        if let Some(command) = current {
            if let Some(missing) = command
                .def
                .opts
                .iter()
                .zip(&seen)
                .find(|(opt, seen)| opt.required && !**seen)
                .map(|(opt, _)| opt)
            {
                return Err(match missing.kind {
                    Kind::Data | Kind::Argv => {
                        format!("command '{}' requires <{}> option", command.def.name, missing.name)
                    }
                    _ => format!("command '{}' requires --{} option", command.def.name, missing.name),
                });
            }
            parsed.push(command);
        }
        if ended {
            return Ok(parsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static COMMANDS: &[CmdDef] = &[
        CmdDef {
            name: "start",
            opts: &[data("domain"), flag("paused"), string("pass-fds")],
            group: Group::Lifecycle,
        },
        CmdDef {
            name: "snap",
            opts: &[data("domain"), string("name"), named_string("memspec"), argv("diskspec")],
            group: Group::Snapshot,
        },
    ];

    fn find(name: &str) -> Option<&'static CmdDef> {
        COMMANDS.iter().find(|def| def.name == name)
    }

    fn words(input: &str) -> Vec<Result<Token, String>> {
        tokenize(input)
    }

    #[test]
    fn tokenizer_follows_virsh_quoting() {
        assert_eq!(
            words(r#"a 'b c';d"e\"f" # x y"#),
            vec![
                Ok(Token::Arg("a".into())),
                Ok(Token::Arg("b c".into())),
                Ok(Token::CommandEnd),
                Ok(Token::Arg("de\"f".into())),
                Ok(Token::CommandEnd),
            ]
        );
        assert_eq!(words("a \"b").last(), Some(&Err("missing \"".into())));
        assert_eq!(words("a b\\").last(), Some(&Err("dangling \\".into())));
        assert_eq!(words("''"), vec![Ok(Token::Arg(String::new()))]);
    }

    #[test]
    fn bare_words_fill_positional_options_in_order() {
        let parsed = parse_string("start a fds; snap d n x y --memspec m", find).unwrap();
        assert_eq!(parsed[0].string("domain"), Some("a"));
        assert_eq!(parsed[0].string("pass-fds"), Some("fds"));
        assert_eq!(parsed[1].string("name"), Some("n"));
        assert_eq!(parsed[1].argv("diskspec"), vec!["x", "y"]);
        assert_eq!(parsed[1].string("memspec"), Some("m"));
    }

    #[test]
    fn errors_match_virsh() {
        let error = |input| parse_string(input, find).unwrap_err();
        assert_eq!(error("start a b c"), "unexpected data 'c'");
        assert_eq!(error("start"), "command 'start' requires <domain> option");
        assert_eq!(error("start --domain"), "expected syntax: --domain <string>");
        assert_eq!(error("start a --paused --paused"), "option --paused already seen");
        assert_eq!(error("start a --paused=1"), "invalid '=' after option --paused");
        assert_eq!(error("start a --x"), "command 'start' doesn't support option --x");
        assert_eq!(error("stop a"), "unknown command: 'stop'");
    }

    #[test]
    fn double_dash_ends_options_and_empty_commands_vanish() {
        let parsed = parse_string(";; start -- --paused ;", find).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].string("domain"), Some("--paused"));
        assert!(!parsed[0].has("paused"));
    }
}
