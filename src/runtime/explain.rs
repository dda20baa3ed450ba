//! [`Instance::explain`]: in words, where a step stands and how the instance got there.

use std::fmt::Write as _;

use super::Instance;
use super::types::{Route, TimerRef, Visit, VisitStatus};

fn label(s: VisitStatus) -> &'static str {
    match s {
        VisitStatus::Completed => "completed",
        VisitStatus::Skipped => "skipped",
        VisitStatus::Rejected => "rejected",
        VisitStatus::Pending => "pending",
        VisitStatus::Cancelled => "cancelled",
        VisitStatus::Error => "stopped by an error",
    }
}

impl Instance {
    /// In words: where a step stands (its latest visit: who is asked, what they did,
    /// its condition or decision and any error, escalation, why it was cancelled) and
    /// the visits on the path that led there (each with the rule, condition and
    /// decisions that led on). `None` when the step was never entered.
    #[must_use]
    pub fn explain(&self, step: &str) -> Option<String> {
        let at = self.state.trace.iter().rposition(|v| *v.step == *step)?;
        let visit = self.state.trace.get(at)?;
        let mut out = String::new();
        if visit.status == VisitStatus::Pending {
            let p = self.pending().into_iter().find(|p| *p.step == *step);
            let _ = write!(out, "`{step}` is pending since t={}: ", visit.entered_at);
            match p {
                Some(p) if p.call.is_some() => {
                    let _ = write!(
                        out,
                        "waiting for the service ({})",
                        p.call.map(|c| c.to_string()).unwrap_or_default()
                    );
                }
                Some(p) => {
                    let tasks: Vec<String> = p
                        .tasks
                        .iter()
                        .map(|t| format!("{} ({})", t.assignee, t.task))
                        .collect();
                    let _ = write!(out, "waiting for {}", tasks.join(", "));
                    if let Some(TimerRef { timer, due_at: due }) = p.timer {
                        let _ = write!(out, "; {timer} is due at t={due}");
                    }
                }
                None => out.push_str("waiting"),
            }
        } else {
            let _ = write!(
                out,
                "`{step}` is {} (t={})",
                label(visit.status),
                visit.ended_at.unwrap_or(visit.entered_at)
            );
        }
        out.push_str(".\n");
        let mut path = Vec::new();
        let mut cursor = visit.from.map(|f| f as usize);
        while let Some(i) = cursor {
            // INVARIANT: `from` points at an earlier visit, so this ends
            if i >= at || path.contains(&i) {
                break;
            }
            path.push(i);
            cursor = self
                .state
                .trace
                .get(i)
                .and_then(|v| v.from)
                .map(|f| f as usize);
        }
        if !path.is_empty() {
            out.push_str("How it got there:\n");
        }
        for i in path.into_iter().rev() {
            if let Some(v) = self.state.trace.get(i) {
                out.push_str("  - ");
                Self::describe(v, &mut out);
                out.push('\n');
            }
        }
        out.push_str("At the step:\n  - ");
        Self::describe(visit, &mut out);
        out.push('\n');
        Some(out)
    }

    fn describe(v: &Visit, out: &mut String) {
        let _ = write!(out, "`{}` {} (t={}", v.step, label(v.status), v.entered_at);
        if let Some(end) = v.ended_at {
            let _ = write!(out, "–{end}");
        }
        out.push(')');
        match v.route() {
            Some(Route::Rule(r)) => {
                let _ = write!(out, " by rule {r}");
            }
            Some(Route::Default) => out.push_str(" by default (no rule held)"),
            None => {}
        }
        if let Some(c) = &v.condition {
            let value = match (&c.value, &c.error) {
                (Some(b), _) => b.to_string(),
                (None, Some(e)) => format!("an error: {e}"),
                (None, None) => "?".to_owned(),
            };
            let _ = write!(
                out,
                "; `{}` (line {}, column {}) was {value}",
                c.text, c.line, c.column
            );
        }
        for a in &v.acts {
            let _ = write!(out, "; {} by {}", a.action, a.by);
            if let Some(r) = &a.role {
                let _ = write!(out, " as {r}");
            }
            if let Some(d) = &a.detail {
                let _ = write!(out, " ({d})");
            }
            let _ = write!(out, " at t={}", a.at);
        }
        if let Some(n) = &v.note {
            let _ = write!(out, "; {n}");
        }
    }
}
