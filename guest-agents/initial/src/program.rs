//! The task agent's priority function as a program: `src/priority.rs` parsed with syn, its body
//! edited as a tree of expressions, and printed back with prettyplease.
//!
//! The file is split at [`MARKER`]: the text above it (helpers, `// evolve` constants, comments)
//! is kept byte for byte; the items below it are parsed and reprinted. The body of `priority` is
//! handled as one expression (a block), so every edit is "replace the k-th numeric node".
//!
//! A node is *numeric* when it has type `f64` in the language the agent writes: float literals,
//! variables, arithmetic, calls, `if … else …` and blocks with a tail. Comparisons and integer
//! literals (the exponent of `powi`) are not, so edits never put a number where a `bool` or an
//! `i32` must be. Text from elsewhere (another node's program) is parsed the same way; what it
//! holds is only ever compiled by the host under its policy.

use syn::visit_mut::{self, VisitMut};
use syn::{BinOp, Block, Expr, ExprBlock, File, Item, ItemFn, Lit, Stmt, UnOp};

/// The line that separates kept text from the reprinted program in `src/priority.rs`.
pub const MARKER: &str = "// ---- the program: the meta agent reprints everything below this line ----";
/// The function the task agent calls.
pub const FUNCTION: &str = "priority";
/// Largest program text the agent parses, in bytes: parsing untrusted text stays cheap.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;
/// Deepest expression the agent walks; deeper trees are refused rather than recursed into.
pub const MAX_DEPTH: usize = 64;

/// `src/priority.rs`, split into its kept head and its parsed program.
pub struct Program {
    head: String,
    file: File,
}

impl Program {
    /// Parses a priority file; it must hold [`MARKER`] and, below it, `fn priority`.
    pub fn parse(source: &str) -> Result<Program, String> {
        let (head, tail) = source.split_once(MARKER).ok_or_else(|| format!("no line `{MARKER}`"))?;
        let file = parse_file(tail)?;
        let program = Program { head: head.to_owned(), file };
        let body = program.body_expr().ok_or_else(|| format!("no `fn {FUNCTION}` below the marker"))?;
        if depth(&body) > MAX_DEPTH {
            return Err(format!("the program is deeper than {MAX_DEPTH}"));
        }
        Ok(program)
    }

    /// The whole file: the head, the marker and the reprinted items.
    pub fn print(&self) -> String {
        format!("{}{MARKER}\n{}", self.head, prettyplease::unparse(&self.file))
    }

    /// The reprinted items alone (what another node's crossover reads).
    pub fn print_items(&self) -> String {
        prettyplease::unparse(&self.file)
    }

    /// The body of `priority`, as one block expression.
    pub fn body_expr(&self) -> Option<Expr> {
        let function = find_function(&self.file)?;
        Some(Expr::Block(ExprBlock { attrs: Vec::new(), label: None, block: (*function.block).clone() }))
    }

    /// The names of `priority`'s parameters: the variables new code may use.
    pub fn parameters(&self) -> Vec<String> {
        let Some(function) = find_function(&self.file) else { return Vec::new() };
        function
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                syn::FnArg::Typed(typed) => match &*typed.pat {
                    syn::Pat::Ident(ident) => Some(ident.ident.to_string()),
                    _ => None,
                },
                syn::FnArg::Receiver(_) => None,
            })
            .collect()
    }

    /// Replaces the body of `priority`; a non-block expression becomes the block's tail.
    pub fn set_body(&mut self, body: Expr) {
        let block = match body {
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => b.block,
            other => Block { brace_token: Default::default(), stmts: vec![Stmt::Expr(other, None)] },
        };
        if let Some(function) = find_function_mut(&mut self.file) {
            *function.block = block;
        }
    }
}

/// Parses program text (items), bounded in size and depth.
pub fn parse_file(text: &str) -> Result<File, String> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(format!("the program is over {MAX_SOURCE_BYTES} bytes"));
    }
    // syn parses by recursive descent: deep nesting is refused before it can exhaust the stack.
    let mut nesting = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => nesting += 1,
            ')' | ']' | '}' => nesting = nesting.saturating_sub(1),
            _ => {}
        }
        if nesting > MAX_DEPTH {
            return Err(format!("the program nests deeper than {MAX_DEPTH}"));
        }
    }
    syn::parse_file(text).map_err(|e| format!("the program does not parse: {e}"))
}

/// The body of `fn priority` in program text, as a block expression.
pub fn body_of(text: &str) -> Option<Expr> {
    let file = parse_file(text).ok()?;
    let block = find_function(&file)?.block.clone();
    let body = Expr::Block(ExprBlock { attrs: Vec::new(), label: None, block: *block });
    (depth(&body) <= MAX_DEPTH).then_some(body)
}

fn find_function(file: &File) -> Option<&ItemFn> {
    file.items.iter().find_map(|item| match item {
        Item::Fn(f) if f.sig.ident == FUNCTION => Some(f),
        _ => None,
    })
}

fn find_function_mut(file: &mut File) -> Option<&mut ItemFn> {
    file.items.iter_mut().find_map(|item| match item {
        Item::Fn(f) if f.sig.ident == FUNCTION => Some(f),
        _ => None,
    })
}

/// Whether a node has type `f64` in the agent's language (see the module docs).
pub fn is_numeric(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(l.lit, Lit::Float(_)),
        Expr::Binary(b) => matches!(b.op, BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_)),
        Expr::Unary(u) => matches!(u.op, UnOp::Neg(_)),
        Expr::Path(p) => p.qself.is_none() && p.path.segments.len() == 1,
        Expr::Call(_) | Expr::MethodCall(_) => true,
        Expr::Paren(p) => is_numeric(&p.expr),
        Expr::If(i) => i.else_branch.is_some(),
        Expr::Block(b) => matches!(b.block.stmts.last(), Some(Stmt::Expr(_, None))),
        _ => false,
    }
}

/// Whether a node can stand as an operand or a receiver without parentheses.
fn is_atomic(e: &Expr) -> bool {
    matches!(e, Expr::Lit(_) | Expr::Path(_) | Expr::Call(_) | Expr::MethodCall(_) | Expr::Paren(_))
}

/// `e`, in parentheses unless it is atomic: safe to put in any numeric position.
pub fn guarded(e: Expr) -> Expr {
    if is_atomic(&e) {
        e
    } else {
        Expr::Paren(syn::ExprParen { attrs: Vec::new(), paren_token: Default::default(), expr: Box::new(e) })
    }
}

/// The direct sub-expressions of a node that edits may reach, in order. A call's function is
/// not one of them: it is a name, not a value.
fn children(e: &mut Expr) -> Vec<&mut Expr> {
    match e {
        Expr::Binary(b) => vec![&mut *b.left, &mut *b.right],
        Expr::Unary(u) => vec![&mut *u.expr],
        Expr::Paren(p) => vec![&mut *p.expr],
        Expr::Group(g) => vec![&mut *g.expr],
        Expr::Call(c) => c.args.iter_mut().collect(),
        Expr::MethodCall(m) => std::iter::once(&mut *m.receiver).chain(m.args.iter_mut()).collect(),
        Expr::If(syn::ExprIf { cond, then_branch, else_branch, .. }) => {
            let mut all = vec![&mut **cond];
            all.extend(block_exprs(then_branch));
            if let Some((_, other)) = else_branch {
                all.extend(branch_exprs(other));
            }
            all
        }
        Expr::Block(b) => block_exprs(&mut b.block),
        _ => Vec::new(),
    }
}

/// [`children`] without the right to change them (no clone needed to look).
fn children_ref(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Binary(b) => vec![&*b.left, &*b.right],
        Expr::Unary(u) => vec![&*u.expr],
        Expr::Paren(p) => vec![&*p.expr],
        Expr::Group(g) => vec![&*g.expr],
        Expr::Call(c) => c.args.iter().collect(),
        Expr::MethodCall(m) => std::iter::once(&*m.receiver).chain(m.args.iter()).collect(),
        Expr::If(syn::ExprIf { cond, then_branch, else_branch, .. }) => {
            let mut all = vec![&**cond];
            all.extend(block_exprs_ref(then_branch));
            if let Some((_, other)) = else_branch {
                match &**other {
                    Expr::Block(b) => all.extend(block_exprs_ref(&b.block)),
                    nested @ Expr::If(_) => all.extend(children_ref(nested)),
                    other => all.push(other),
                }
            }
            all
        }
        Expr::Block(b) => block_exprs_ref(&b.block),
        _ => Vec::new(),
    }
}

fn block_exprs_ref(block: &Block) -> Vec<&Expr> {
    block
        .stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Local(local) => local.init.as_ref().map(|init| &*init.expr),
            Stmt::Expr(e, _) => Some(e),
            _ => None,
        })
        .collect()
}

/// [`walk`] without the right to change nodes.
fn walk_ref<'a>(e: &'a Expr, depth: usize, f: &mut dyn FnMut(&'a Expr, usize)) {
    if depth <= MAX_DEPTH + 1 {
        f(e, depth);
        for child in children_ref(e) {
            walk_ref(child, depth + 1, f);
        }
    }
}

/// What an `else` holds may only be a block or another `if`: edits reach inside, never replace it.
fn branch_exprs(e: &mut Expr) -> Vec<&mut Expr> {
    match e {
        Expr::Block(b) => block_exprs(&mut b.block),
        Expr::If(_) => children(e),
        _ => vec![e],
    }
}

fn block_exprs(block: &mut Block) -> Vec<&mut Expr> {
    block
        .stmts
        .iter_mut()
        .filter_map(|s| match s {
            Stmt::Local(local) => local.init.as_mut().map(|init| &mut *init.expr),
            Stmt::Expr(e, _) => Some(e),
            _ => None,
        })
        .collect()
}

/// Visits every node in pre-order with its depth; `f` returns whether to go below the node.
fn walk(e: &mut Expr, depth: usize, f: &mut dyn FnMut(&mut Expr, usize) -> bool) {
    if depth <= MAX_DEPTH + 1 && f(e, depth) {
        for child in children(e) {
            walk(child, depth + 1, f);
        }
    }
}

/// Number of nodes in a tree.
pub fn size(e: &Expr) -> usize {
    let mut count = 0;
    walk_ref(e, 0, &mut |_, _| count += 1);
    count
}

/// Depth of a tree (a leaf has depth 0).
pub fn depth(e: &Expr) -> usize {
    let mut deepest = 0;
    walk_ref(e, 0, &mut |_, d| deepest = deepest.max(d));
    deepest
}

/// The numeric nodes of a tree, in pre-order (for choosing where to edit).
pub fn numeric_nodes(e: &Expr) -> Vec<&Expr> {
    let mut found = Vec::new();
    walk_ref(e, 0, &mut |node, _| {
        if is_numeric(node) {
            found.push(node);
        }
    });
    found
}

/// Replaces the `k`-th numeric node (pre-order, as [`numeric_nodes`] lists them) with
/// `edit(old)`. Returns whether the node was found.
pub fn replace_numeric(root: &mut Expr, k: usize, edit: impl FnOnce(Expr) -> Expr) -> bool {
    let mut edit = Some(edit);
    let mut seen = 0;
    walk(root, 0, &mut |node, _| {
        if edit.is_none() {
            return false;
        }
        if is_numeric(node) {
            if seen == k {
                let old = std::mem::replace(node, Expr::Verbatim(Default::default()));
                *node = (edit.take().expect("checked above"))(old);
                return false;
            }
            seen += 1;
        }
        true
    });
    edit.is_none()
}

/// The direct numeric children of a node.
pub fn numeric_children(e: &Expr) -> Vec<&Expr> {
    children_ref(e).into_iter().filter(|c| is_numeric(c)).collect()
}

/// Parses a template such as `(__0 + __1)` and puts `holes[k]` (guarded) where `__k` stands.
pub fn fill(template: &str, holes: &[Expr]) -> Result<Expr, String> {
    struct Holes<'a>(&'a [Expr]);
    impl VisitMut for Holes<'_> {
        fn visit_expr_mut(&mut self, e: &mut Expr) {
            if let Expr::Path(p) = e
                && let Some(ident) = p.path.get_ident()
                && let Some(index) = ident.to_string().strip_prefix("__").and_then(|k| k.parse::<usize>().ok())
                && let Some(hole) = self.0.get(index)
            {
                *e = guarded(hole.clone());
                return;
            }
            visit_mut::visit_expr_mut(self, e);
        }
    }
    let mut expr: Expr = syn::parse_str(template).map_err(|e| format!("template `{template}`: {e}"))?;
    Holes(holes).visit_expr_mut(&mut expr);
    Ok(expr)
}

/// The tokens of a tree as text: equal trees give equal text.
pub fn tokens(e: &Expr) -> String {
    quote::ToTokens::to_token_stream(e).to_string()
}

/// A float literal (negative values as a parenthesised negation), rounded to 4 significant digits.
pub fn literal(value: f64) -> Expr {
    let value = if value.is_finite() { value.clamp(-1e6, 1e6) } else { 0.0 };
    let rounded = if value == 0.0 {
        0.0
    } else {
        let scale = 10f64.powi(3 - value.abs().log10().floor() as i32);
        (value * scale).round() / scale
    };
    let text = if rounded < 0.0 { format!("(-{:?})", -rounded) } else { format!("{rounded:?}") };
    syn::parse_str(&text).unwrap_or_else(|_| syn::parse_str("0.0").expect("`0.0` parses"))
}

/// The value of a float literal node (also `-lit` and `(lit)`).
pub fn literal_value(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok(),
            _ => None,
        },
        Expr::Paren(p) => literal_value(&p.expr),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => literal_value(&u.expr).map(|v| -v),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The initial priority file (tests run natively in the crate's directory).
    pub(crate) fn initial_source() -> String {
        std::fs::read_to_string("src/priority.rs").expect("tests run in the crate's directory")
    }

    #[test]
    fn the_initial_file_reprints_to_itself() {
        let program = Program::parse(&initial_source()).unwrap();
        assert_eq!(program.parameters(), ["item", "remaining", "capacity", "index", "bins"]);
        let printed = program.print();
        assert!(printed.starts_with(initial_source().split_once(MARKER).unwrap().0), "the head is kept byte for byte");
        assert_eq!(Program::parse(&printed).unwrap().print(), printed, "printing is stable");
    }

    #[test]
    fn a_file_without_marker_or_function_is_refused() {
        assert!(Program::parse("pub fn priority() -> f64 { 1.0 }").err().unwrap().contains("no line"));
        assert!(Program::parse(&format!("{MARKER}\npub fn other() -> f64 {{ 1.0 }}")).is_err());
        assert!(Program::parse(&format!("{MARKER}\npub fn priority( -> f64")).err().unwrap().contains("parse"));
        let deep = format!("{MARKER}\npub fn priority(x: f64) -> f64 {{ {}x{} }}", "(".repeat(100), ")".repeat(100));
        assert!(Program::parse(&deep).err().unwrap().contains("deeper"));
        let nested = format!("{MARKER}\npub fn priority(x: f64) -> f64 {{ {}x{} }}", "-(".repeat(40), ")".repeat(40));
        assert!(Program::parse(&nested).err().unwrap().contains("deeper"), "syntax-tree depth, not only brackets");
    }

    #[test]
    fn numeric_nodes_leave_out_conditions_and_exponents() {
        let body = body_of("fn priority(x: f64) -> f64 { if x < 2.0 { f64::powi(x, 3) } else { -x } }").unwrap();
        let nodes: Vec<String> = numeric_nodes(&body).into_iter().map(tokens).collect();
        // The body, the `if`, the operands of `<`, the call and its base, `-x` and its `x`; not
        // `x < 2.0` nor `3`, nor the `else` block, which must stay a block.
        assert_eq!(nodes.len(), 8, "{nodes:?}");
        assert!(nodes.iter().all(|n| n != "x < 2.0" && n != "3"), "{nodes:?}");
    }

    #[test]
    fn replacing_and_filling_keep_precedence() {
        let mut body = body_of("fn priority(x: f64) -> f64 { f64::abs(x) * 2.0 }").unwrap();
        let k = numeric_nodes(&body).iter().position(|n| tokens(n) == "x").unwrap();
        let sum = fill("(__0 + __1)", &[literal(1.0), literal(-3.0)]).unwrap();
        assert!(replace_numeric(&mut body, k, |_| guarded(sum)));
        assert_eq!(tokens(&body), "{ f64 :: abs ((1.0 + (- 3.0))) * 2.0 }");
        assert!(!replace_numeric(&mut body, 99, |e| e));
    }

    #[test]
    fn literals_are_rounded_and_signed() {
        assert_eq!(tokens(&literal(0.123456)), "0.1235");
        assert_eq!(tokens(&literal(-2.0)), "(- 2.0)");
        assert_eq!(literal_value(&literal(-2.0)), Some(-2.0));
        assert_eq!(tokens(&literal(f64::NAN)), "0.0");
        assert_eq!(literal_value(&literal(1e30)), Some(1e6));
    }
}
