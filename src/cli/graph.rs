//! `flowc graph`.

use std::path::Path;

use flowc::graph::Graph;
use flowc::graph::render::{Format, render};

use super::GraphFormat;

pub fn run(path: &Path, format: GraphFormat) -> u8 {
    let flow = match super::check::load_one(path) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let g = Graph::build(flow.flow());
    let title = flow
        .flow()
        .name
        .clone()
        .unwrap_or_else(|| flow.id().to_owned());
    let fmt = match format {
        GraphFormat::Mermaid => Format::Mermaid,
        GraphFormat::Dot => Format::Dot,
    };
    out!("{}", render(&g, &title, fmt));
    0
}
