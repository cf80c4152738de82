//! Typed mutation operators on the priority program's syntax tree (see `program.rs`).
//!
//! New code is written as fully parenthesised text and parsed, so what the agent writes is what
//! a person would; every value it puts in place is numeric, so a child fails to compile only when
//! an edit meets code the agent did not write itself (or a name another node brought in).

use crate::program::{self, fill, guarded, is_numeric, literal, literal_value, numeric_children, numeric_nodes};
use agent_sdk::rng::Rng;
use syn::{BinOp, Expr, Stmt};

/// One kind of edit. `Gene` rewrites a `// evolve` constant of the file rather than the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Replace,
    Insert,
    Delete,
    Swap,
    Perturb,
    Crossover,
    Simplify,
    Gene,
}

impl Operator {
    pub const ALL: [Operator; 8] = [
        Operator::Replace,
        Operator::Insert,
        Operator::Delete,
        Operator::Swap,
        Operator::Perturb,
        Operator::Crossover,
        Operator::Simplify,
        Operator::Gene,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::Replace => "replace",
            Operator::Insert => "insert",
            Operator::Delete => "delete",
            Operator::Swap => "swap",
            Operator::Perturb => "perturb",
            Operator::Crossover => "crossover",
            Operator::Simplify => "simplify",
            Operator::Gene => "gene",
        }
    }

    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.name() == name.trim())
    }
}

/// What the operators draw on: the program's variables, how deep new code may be, how far
/// constants move, and another node's program for crossover.
pub struct Tools<'a> {
    pub variables: &'a [String],
    pub new_depth: usize,
    pub perturb_scale: f64,
    pub partner: Option<&'a Expr>,
}

/// Binary forms a new node may take; `__0` and `__1` are its operands.
const BINARY: [&str; 7] = [
    "(__0 + __1)",
    "(__0 - __1)",
    "(__0 * __1)",
    "div(__0, __1)",
    "f64::min(__0, __1)",
    "f64::max(__0, __1)",
    "(__0 * __1)",
];
/// Unary forms.
const UNARY: [&str; 7] =
    ["f64::abs(__0)", "sqrt(__0)", "log(__0)", "exp(__0)", "f64::powi(__0, 2)", "f64::powi(__0, 3)", "(-__0)"];
/// Comparisons for `if`.
const COMPARE: [&str; 4] = ["<", "<=", ">", ">="];
/// Constants a new leaf often takes: scales that matter for sizes up to a few hundred.
const CONSTANTS: [f64; 10] = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 0.1];

/// Applies one operator to the body; an operator with nothing to work on says so.
pub fn apply(op: Operator, root: &mut Expr, tools: &Tools, rng: &mut Rng) -> Result<(), String> {
    match op {
        Operator::Replace => {
            let k = pick_slot(root, rng, |_| true)?;
            let new = random_expr(tools, tools.new_depth, rng)?;
            program::replace_numeric(root, k, |_| guarded(new));
            Ok(())
        }
        Operator::Insert => insert(root, tools, rng),
        Operator::Delete => {
            let k = pick_slot(root, rng, |e| !numeric_children(e).is_empty())?;
            let mut rng2 = Rng::new(rng.next_u64());
            program::replace_numeric(root, k, |old| {
                let kids = numeric_children(&old);
                let kept = kids[rng2.below(kids.len() as u64) as usize].clone();
                guarded(kept)
            });
            Ok(())
        }
        Operator::Swap => {
            let k = pick_slot(root, rng, swappable)?;
            program::replace_numeric(root, k, swap);
            Ok(())
        }
        Operator::Perturb => {
            let k = pick_slot(root, rng, |e| matches!(e, Expr::Lit(_)))?;
            let (scale, unit, flip, gauss) = (tools.perturb_scale, rng.unit(), rng.chance(0.1), normal(rng));
            program::replace_numeric(root, k, |old| {
                let v = literal_value(&old).unwrap_or(0.0);
                let new = if v == 0.0 {
                    // A zero has no scale to keep: a term switched off comes on at a typical size.
                    CONSTANTS[(unit * CONSTANTS.len() as f64) as usize % CONSTANTS.len()] * gauss.signum()
                } else if flip {
                    -v
                } else if unit < 0.5 {
                    v * (scale * gauss).exp()
                } else {
                    v + scale * gauss * v.abs().max(1.0)
                };
                literal(new)
            });
            Ok(())
        }
        Operator::Crossover => {
            let partner = tools.partner.ok_or("no other node's program to cross with")?;
            let donors: Vec<&Expr> = numeric_nodes(partner).into_iter().skip(1).collect();
            let donor = (*rng.pick(&donors).ok_or("the other program has no expression")?).clone();
            let k = pick_slot(root, rng, |_| true)?;
            program::replace_numeric(root, k, |_| guarded(donor));
            Ok(())
        }
        Operator::Simplify => simplify(root),
        Operator::Gene => Err("a gene is a constant of the file, not of the tree".into()),
    }
}

/// A numeric node other than the body itself, among those `wanted` accepts, as its index.
fn pick_slot(root: &Expr, rng: &mut Rng, wanted: impl Fn(&Expr) -> bool) -> Result<usize, String> {
    let candidates: Vec<usize> =
        numeric_nodes(root).iter().enumerate().skip(1).filter(|(_, e)| wanted(e)).map(|(k, _)| k).collect();
    rng.pick(&candidates).copied().ok_or_else(|| "no node this operator applies to".into())
}

/// Wraps a node into a new term: `old op new`, `f(old)`, or `if … { old } else { new }`.
fn insert(root: &mut Expr, tools: &Tools, rng: &mut Rng) -> Result<(), String> {
    let k = pick_slot(root, rng, |_| true)?;
    let small = tools.new_depth.saturating_sub(1);
    let form = rng.below(10);
    let (template, holes) = if form < 6 {
        let other = random_expr(tools, small, rng)?;
        let template = *rng.pick(&BINARY).expect("not empty");
        // Half the time the old node is the second operand.
        let template = if rng.chance(0.5) {
            template.to_owned()
        } else {
            template.replace("__0", "__x").replace("__1", "__0").replace("__x", "__1")
        };
        (template, vec![other])
    } else if form < 9 {
        ((*rng.pick(&UNARY).expect("not empty")).to_owned(), Vec::new())
    } else {
        let (a, b, other) =
            (random_expr(tools, small, rng)?, random_expr(tools, small, rng)?, random_expr(tools, small, rng)?);
        let cmp = rng.pick(&COMPARE).expect("not empty");
        (format!("(if __1 {cmp} __2 {{ __0 }} else {{ __3 }})"), vec![a, b, other])
    };
    let mut built = Err(String::new());
    program::replace_numeric(root, k, |old| {
        let mut all = vec![old.clone()];
        all.extend(holes);
        built = fill(&template, &all);
        built.clone().unwrap_or(old)
    });
    built.map(|_| ())
}

/// A random numeric expression at most `depth` deep over the variables and constants.
pub fn random_expr(tools: &Tools, depth: usize, rng: &mut Rng) -> Result<Expr, String> {
    if depth == 0 || rng.chance(0.3) {
        return Ok(random_leaf(tools, rng));
    }
    let form = rng.below(10);
    if form < 6 {
        let (a, b) = (random_expr(tools, depth - 1, rng)?, random_expr(tools, depth - 1, rng)?);
        fill(rng.pick(&BINARY).expect("not empty"), &[a, b])
    } else if form < 9 {
        let a = random_expr(tools, depth - 1, rng)?;
        fill(rng.pick(&UNARY).expect("not empty"), &[a])
    } else {
        let parts: Vec<Expr> = (0..4).map(|_| random_expr(tools, depth - 1, rng)).collect::<Result<_, _>>()?;
        let cmp = rng.pick(&COMPARE).expect("not empty");
        fill(&format!("(if __0 {cmp} __1 {{ __2 }} else {{ __3 }})"), &parts)
    }
}

fn random_leaf(tools: &Tools, rng: &mut Rng) -> Expr {
    if !tools.variables.is_empty() && rng.chance(0.65) {
        let name = rng.pick(tools.variables).expect("not empty");
        return syn::parse_str(name).unwrap_or_else(|_| literal(1.0));
    }
    if rng.chance(0.5) {
        literal(*rng.pick(&CONSTANTS).expect("not empty"))
    } else {
        literal((rng.unit() * 10.0 - 5.0) * 10.0)
    }
}

/// Roughly a standard normal draw: the sum of four uniforms, centred and scaled.
fn normal(rng: &mut Rng) -> f64 {
    ((0..4).map(|_| rng.unit()).sum::<f64>() - 2.0) * 3f64.sqrt()
}

/// Nodes whose operands' order matters: `a - b`, `a / b`, two-argument calls, `if`.
fn swappable(e: &Expr) -> bool {
    match e {
        Expr::Binary(b) => matches!(b.op, BinOp::Sub(_) | BinOp::Div(_)),
        Expr::Call(c) => c.args.len() == 2 && c.args.iter().all(is_numeric),
        Expr::If(i) => matches!(&*i.cond, Expr::Binary(_)),
        _ => false,
    }
}

fn swap(mut e: Expr) -> Expr {
    match &mut e {
        Expr::Binary(b) => std::mem::swap(&mut b.left, &mut b.right),
        Expr::Call(c) => {
            let mut args: Vec<Expr> = c.args.iter().cloned().collect();
            args.reverse();
            c.args = args.into_iter().collect();
        }
        Expr::If(i) => {
            if let Expr::Binary(cond) = &mut *i.cond {
                std::mem::swap(&mut cond.left, &mut cond.right);
            }
        }
        _ => {}
    }
    e
}

/// Folds the first (largest) constant subexpression into its value.
fn simplify(root: &mut Expr) -> Result<(), String> {
    let nodes = numeric_nodes(root);
    let (k, value) = nodes
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, e)| literal_value(e).is_none())
        .find_map(|(k, e)| constant_value(e).filter(|v| v.is_finite()).map(|v| (k, v)))
        .ok_or("no constant subexpression to fold")?;
    program::replace_numeric(root, k, |_| guarded(literal(value)));
    Ok(())
}

/// The value of an expression without variables, as the task agent would compute it.
pub fn constant_value(e: &Expr) -> Option<f64> {
    use crate::priority as p;
    match e {
        Expr::Lit(_) => literal_value(e),
        Expr::Paren(inner) => constant_value(&inner.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => constant_value(&u.expr).map(|v| -v),
        Expr::Binary(b) => {
            let (l, r) = (constant_value(&b.left)?, constant_value(&b.right)?);
            match b.op {
                BinOp::Add(_) => Some(l + r),
                BinOp::Sub(_) => Some(l - r),
                BinOp::Mul(_) => Some(l * r),
                BinOp::Div(_) => Some(l / r),
                _ => None,
            }
        }
        Expr::Call(c) => {
            let Expr::Path(f) = &*c.func else { return None };
            let name: Vec<String> = f.path.segments.iter().map(|s| s.ident.to_string()).collect();
            let int = c.args.iter().nth(1).and_then(|a| match a {
                Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<i32>().ok(),
                _ => None,
            });
            let args: Vec<f64> = c.args.iter().map(constant_value).collect::<Option<_>>().unwrap_or_default();
            match (name.join("::").as_str(), args.as_slice()) {
                ("div", [a, b]) => Some(p::div(*a, *b)),
                ("sqrt", [a]) => Some(p::sqrt(*a)),
                ("log", [a]) => Some(p::log(*a)),
                ("exp", [a]) => Some(p::exp(*a)),
                ("f64::min", [a, b]) => Some(a.min(*b)),
                ("f64::max", [a, b]) => Some(a.max(*b)),
                ("f64::abs", [a]) => Some(a.abs()),
                ("f64::powi", _) => Some(constant_value(c.args.first()?)?.powi(int?)),
                _ => None,
            }
        }
        Expr::Block(b) => match b.block.stmts.as_slice() {
            [Stmt::Expr(tail, None)] => constant_value(tail),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::tests::initial_source;
    use crate::program::{Program, tokens};

    fn tools<'a>(variables: &'a [String], partner: Option<&'a Expr>) -> Tools<'a> {
        Tools { variables, new_depth: 3, perturb_scale: 0.3, partner }
    }

    fn initial_body() -> (Program, Expr) {
        let program = Program::parse(&initial_source()).unwrap();
        let body = program.body_expr().unwrap();
        (program, body)
    }

    #[test]
    fn every_tree_operator_changes_the_program_into_one_that_parses() {
        let (program, start) = initial_body();
        let variables = program.parameters();
        let partner = crate::program::body_of("fn priority(item: f64) -> f64 { f64::max(item, 7.0) * 2.0 }").unwrap();
        for op in Operator::ALL.into_iter().filter(|op| *op != Operator::Gene) {
            let mut changed = 0;
            for seed in 0..50 {
                let mut rng = Rng::new(seed);
                let mut body = start.clone();
                // Grow the program first, so every operator finds something to work on.
                for _ in 0..3 {
                    apply(Operator::Insert, &mut body, &tools(&variables, Some(&partner)), &mut rng).unwrap();
                }
                let grown = tokens(&body);
                if apply(op, &mut body, &tools(&variables, Some(&partner)), &mut rng).is_err() {
                    continue;
                }
                changed += usize::from(tokens(&body) != grown);
                let mut child = Program::parse(&initial_source()).unwrap();
                child.set_body(body);
                let printed = child.print();
                let reparsed =
                    Program::parse(&printed).unwrap_or_else(|e| panic!("{op:?}, seed {seed}: {e}\n{printed}"));
                let again = reparsed.body_expr().unwrap();
                // The printer may add a trailing comma to a long argument list; nothing else changes.
                let canonical = |e: &Expr| tokens(e).replace(" ,)", ")");
                assert_eq!(
                    canonical(&again),
                    canonical(&child.body_expr().unwrap()),
                    "{op:?}, seed {seed}:\n{printed}"
                );
            }
            assert!(changed >= 10, "{op:?} changed the program in only {changed} of 50 tries");
        }
    }

    #[test]
    fn operators_without_material_say_so() {
        let mut body =
            crate::program::body_of("fn priority(item: f64, remaining: f64) -> f64 { -(remaining - item) }").unwrap();
        let variables = vec!["item".to_owned(), "remaining".to_owned()];
        let mut rng = Rng::new(1);
        assert!(apply(Operator::Crossover, &mut body, &tools(&variables, None), &mut rng).is_err());
        assert!(apply(Operator::Perturb, &mut body, &tools(&variables, None), &mut rng).is_err(), "no literal yet");
        assert!(apply(Operator::Simplify, &mut body, &tools(&variables, None), &mut rng).is_err());
        assert!(apply(Operator::Gene, &mut body, &tools(&variables, None), &mut rng).is_err());
    }

    #[test]
    fn constants_fold_as_the_task_agent_computes_them() {
        let body = crate::program::body_of(
            "fn priority(x: f64) -> f64 { div(1.0, 0.0) + f64::powi(2.0, 3) + f64::max(sqrt(-4.0), 1.5) }",
        )
        .unwrap();
        assert_eq!(constant_value(&body), Some(1.0 + 8.0 + 2.0));
        let mut with_variable =
            crate::program::body_of("fn priority(x: f64) -> f64 { x * (2.0 * (3.0 - 1.0)) }").unwrap();
        simplify(&mut with_variable).unwrap();
        assert_eq!(tokens(&with_variable), "{ x * 4.0 }");
        assert_eq!(constant_value(&with_variable), None);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for op in Operator::ALL {
            assert_eq!(Operator::from_name(op.name()), Some(op));
        }
        assert_eq!(Operator::from_name("teleport"), None);
    }
}
