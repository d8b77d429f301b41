//! Multi-turn chat: conversations sent turn by turn.
//!
//! Turn 1 is the prepared (pre-serialized) first prompt. Turn k+1's messages are turn k's
//! messages, then the model's exact streamed answer to turn k as an `assistant` message, then
//! the conversation's next user turn; system prompts stay `system` at the head. Each turn is
//! sent only after the previous answer finished; a failed turn ends the conversation (there is
//! no answer to build on). With `--max-context-tokens`, the oldest user/assistant exchanges are
//! dropped until the messages plus the turn's `max_tokens` fit, and every such cut is counted.
//!
//! Closed loop: a virtual user walks one conversation to its end, then takes the next.
//! Open loop (rate steps): an arrival is one request, as always; it sends the next turn of a
//! conversation whose previous answer has finished (a ready session, oldest first), or else
//! starts a new conversation. The offered rate stays a request rate, and every conversation
//! still has one session whose turns go out one at a time.
//!
//! Only conversations pay for this: their answers are kept (`execute_turn`) and their later
//! bodies are serialized when the previous answer ends; single-turn prompts keep the
//! pre-serialized path.
//!
//! With `--endpoint responses` the server keeps the conversation: a later turn sends only its new
//! user input and `previous_response_id`, the id of the previous turn's response (the whole
//! history only if that answer had no id). Its prompt tokens are still the whole conversation's,
//! as the server counts them in `input_tokens`.
//!
//! Prompt token counts of later turns are our tokenizer's counts of each message summed, the
//! answers counted by the server's `usage` (or by their chunks): the chat template is not
//! included; the server's own `usage.prompt_tokens` is recorded beside it.
//!
//! Tools (agent-like loops): a conversation whose dataset entry has `tools` offers them in
//! every turn. When an answer is a tool call, the next turn sends the model's actual calls back
//! as the `assistant` message's `tool_calls`, then one `tool` message per call (its
//! `tool_call_id` is the call's id, its content the dataset's next tool result), and the model
//! answers again; a text answer goes on to the next user turn, or ends the conversation. At
//! most [`MAX_TOOL_ROUNDS`] tool rounds follow one another (a model that never stops calling).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sinks::event::Nanos;

use crate::config::{Endpoint, RunConfig};
use crate::load::request_actor::{hand_over, run_one};
use crate::request::client::{execute_turn, Answer, Job, PreparedBody};
use crate::request::openai::{
    chat_body_with_tools, completions_body, responses_body, sent_figures, Message, MessageExtras,
};
use crate::runtime::workers;
use crate::workload::{PreparedRequest, UserTurn, Workload};

/// Tool rounds (the model's calls, their results) that may follow one another in a
/// conversation before it is ended.
pub const MAX_TOOL_ROUNDS: u32 = 16;

use super::in_flight::InFlight;
use super::tracker::Ending;
use super::{RequestPool, StepContext};

/// How later turns are sent, for the whole run.
pub struct ChatPlan {
    pub model: String,
    pub endpoint: Endpoint,
    pub ignore_eos: bool,
    pub reasoning_effort: Option<String>,
    /// `--max-context-tokens`: the messages plus `max_tokens` of a turn must fit in it.
    pub max_context_tokens: Option<u64>,
    /// The prepared request of each pool entry (same order as the pool's bodies).
    pub scripts: Vec<Arc<PreparedRequest>>,
    /// Counters, reported at the end of the run.
    pub stats: ConversationStats,
    /// Open loop: the script of each pool body, by the body's address (the rate ticker's job
    /// carries only the body).
    by_body: HashMap<usize, Arc<PreparedRequest>>,
    /// Open loop: sessions whose next turn is ready to send, oldest first.
    ready: Mutex<VecDeque<ReadyTurn>>,
}

/// A conversation in progress and the body of its next turn.
struct ReadyTurn {
    session: Session,
    body: Arc<PreparedBody>,
}

#[derive(Debug, Default)]
pub struct ConversationStats {
    pub later_turns_sent: AtomicU64,
    /// Exchanges (a user turn and its answer) dropped to fit the context.
    pub exchanges_truncated: AtomicU64,
    /// Turns sent with some history dropped.
    pub turns_truncated: AtomicU64,
    /// Conversations ended early by a failed turn.
    pub ended_by_failure: AtomicU64,
    /// Turns that sent the model's tool calls back with their results.
    pub tool_result_turns: AtomicU64,
}

impl ChatPlan {
    /// The plan for a pool whose bodies are `bodies`, prepared from `scripts` (same order).
    pub fn new(
        cfg: &RunConfig,
        model: &str,
        scripts: Vec<Arc<PreparedRequest>>,
        bodies: &[Arc<PreparedBody>],
    ) -> Self {
        let by_body = bodies
            .iter()
            .zip(&scripts)
            .map(|(b, s)| (Arc::as_ptr(b) as usize, s.clone()))
            .collect();
        ChatPlan {
            model: model.to_string(),
            endpoint: cfg.endpoint,
            ignore_eos: cfg.ignore_eos,
            reasoning_effort: cfg.reasoning_effort.clone(),
            max_context_tokens: cfg.max_context_tokens,
            scripts,
            stats: ConversationStats::default(),
            by_body,
            ready: Mutex::new(VecDeque::new()),
        }
    }

    fn script_of(&self, body: &Arc<PreparedBody>) -> Option<Arc<PreparedRequest>> {
        self.by_body.get(&(Arc::as_ptr(body) as usize)).cloned()
    }

    /// Whether any prepared request may have more than one turn.
    pub fn is_multi_turn(requests: &[Arc<PreparedRequest>]) -> bool {
        requests.iter().any(|r| r.is_conversation())
    }

    /// A line for the closing note, or `None` when no later turn was sent.
    pub fn summary(&self) -> Option<String> {
        let sent = self.stats.later_turns_sent.load(Ordering::Relaxed);
        let truncated = self.stats.turns_truncated.load(Ordering::Relaxed);
        let exchanges = self.stats.exchanges_truncated.load(Ordering::Relaxed);
        let failed = self.stats.ended_by_failure.load(Ordering::Relaxed);
        let tools = self.stats.tool_result_turns.load(Ordering::Relaxed);
        (sent + failed > 0).then(|| {
            format!(
                "multi-turn chat: {sent} follow-up turns sent with the model's answers ({tools} of them with tool results); {truncated} of them truncated to --max-context-tokens ({exchanges} oldest exchanges dropped); {failed} conversations ended by a failed turn"
            )
        })
    }
}

/// The run's pool of prepared bodies; with multi-turn conversations in the workload, also the
/// plan virtual users walk them with.
pub fn pool(
    cfg: &RunConfig,
    model: &str,
    workload: &Workload,
    bodies: Vec<Arc<PreparedBody>>,
) -> RequestPool {
    // Embeddings and rerank bodies batch prompts: there is no answer to build a turn on.
    if cfg.endpoint.is_pooling() || !ChatPlan::is_multi_turn(&workload.requests) {
        return RequestPool::new(bodies);
    }
    let plan = ChatPlan::new(cfg, model, workload.requests.clone(), &bodies);
    RequestPool::new(bodies).with_conversations(plan)
}

/// The closed loop's next unit of work: a single request, or a whole conversation, its first
/// request scheduled at `ready_at` (when the user became ready). Returns how the last request
/// ended.
pub async fn send_next(step: &Arc<StepContext>, send_until: Instant, ready_at: Nanos) -> Ending {
    let (body, script) = step.pool.next_entry();
    let first = step.job_with(ready_at, body);
    match (step.pool.chat(), script) {
        (Some(plan), Some(script)) if script.is_conversation() => {
            walk(step, plan, &script, first, send_until).await
        }
        _ => run_one(step, first.0, first.1).await,
    }
}

/// Sends a conversation's turns one after the other (module docs).
async fn walk(
    step: &Arc<StepContext>,
    plan: &ChatPlan,
    script: &Arc<PreparedRequest>,
    first: (Job, InFlight),
    send_until: Instant,
) -> Ending {
    let mut session = Session::new(script.clone());
    let mut job = first;
    loop {
        let (ending, answer) = run_turn(step, job.0, job.1).await;
        let Some((answer, answer_tokens)) = answer else {
            plan.stats.ended_by_failure.fetch_add(1, Ordering::Relaxed);
            return ending;
        };
        if Instant::now() >= send_until
            || step.shared.shutdown.is_stopping()
            || step.tracker.sending_stopped()
        {
            return ending;
        }
        let Some(body) = session.advance(plan, answer, answer_tokens) else {
            return ending; // the last turn was answered
        };
        job = step.job_with(step.shared.clock.now(), body);
    }
}

/// The open loop's request for one arrival (module docs): the next turn of a ready session,
/// else the first turn of the conversation the job's body starts.
pub async fn send_arrival(step: &StepContext, mut job: Job, mut guard: InFlight) {
    let Some(plan) = step.pool.chat() else {
        run_one(step, job, guard).await;
        return;
    };
    let ready = plan.ready.lock().pop_front();
    let session = match ready {
        Some(r) => {
            guard.set_body(&r.body);
            job.prepared = r.body;
            r.session
        }
        None => match plan.script_of(&job.prepared) {
            Some(script) if script.is_conversation() => Session::new(script),
            _ => {
                run_one(step, job, guard).await;
                return;
            }
        },
    };
    let Some((answer, answer_tokens)) = run_turn(step, job, guard).await.1 else {
        plan.stats.ended_by_failure.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut session = session;
    if let Some(body) = session.advance(plan, answer, answer_tokens) {
        plan.ready.lock().push_back(ReadyTurn { session, body });
    }
}

/// A conversation in progress.
#[derive(Debug)]
struct Session {
    script: Arc<PreparedRequest>,
    history: History,
    /// Index in `script.later_turns` of the next user turn.
    next: usize,
    /// Tool results sent so far, and tool rounds since the last user turn.
    tool_results: usize,
    tool_rounds: u32,
}

impl Session {
    fn new(script: Arc<PreparedRequest>) -> Self {
        let history = History::new(&script.messages, script.prompt_tokens);
        Session {
            script,
            history,
            next: 0,
            tool_results: 0,
            tool_rounds: 0,
        }
    }

    /// After the answer to the turn just sent: the body of the next turn (answer as
    /// `assistant`, then the tool results or the next user turn, fitted to the context), or
    /// `None` at the end.
    fn advance(
        &mut self,
        plan: &ChatPlan,
        answer: Answer,
        answer_tokens: u64,
    ) -> Option<Arc<PreparedBody>> {
        let script = self.script.clone();
        let turn = match (&script.tools, answer.tool_calls.is_empty()) {
            (Some(tools), false) => {
                if self.tool_rounds >= MAX_TOOL_ROUNDS {
                    return None;
                }
                self.tool_rounds += 1;
                let calls = answer.tool_calls;
                let results: Vec<(String, &UserTurn)> = calls
                    .iter()
                    .map(|c| {
                        self.tool_results += 1;
                        (c.id.clone(), tools.result(self.tool_results - 1))
                    })
                    .collect();
                self.history.push_with(
                    "assistant",
                    answer.text,
                    answer_tokens,
                    MessageExtras {
                        tool_calls: calls,
                        ..MessageExtras::default()
                    },
                );
                for (id, result) in &results {
                    let extras = MessageExtras {
                        tool_call_id: Some(id.clone()),
                        ..MessageExtras::default()
                    };
                    let content = result.content.clone();
                    self.history
                        .push_with("tool", content, result.tokens, extras);
                }
                plan.stats.tool_result_turns.fetch_add(1, Ordering::Relaxed);
                results.last().map(|(_, r)| *r)?
            }
            _ => {
                let turn = script.later_turns.get(self.next)?;
                self.next += 1;
                self.tool_rounds = 0;
                self.history.push("assistant", answer.text, answer_tokens);
                self.history.push("user", turn.content.clone(), turn.tokens);
                turn
            }
        };
        // The Responses API keeps the conversation: a later user turn sends only itself.
        if let (Endpoint::Responses, Some(previous)) = (plan.endpoint, &answer.response_id) {
            plan.stats.later_turns_sent.fetch_add(1, Ordering::Relaxed);
            return Some(Arc::new(self.history.follow_up(plan, turn, previous)));
        }
        let dropped = self
            .history
            .fit(plan.max_context_tokens, turn.max_tokens.unwrap_or(0));
        if dropped > 0 {
            plan.stats.turns_truncated.fetch_add(1, Ordering::Relaxed);
            plan.stats
                .exchanges_truncated
                .fetch_add(dropped, Ordering::Relaxed);
        }
        plan.stats.later_turns_sent.fetch_add(1, Ordering::Relaxed);
        let tools = script.tools.as_ref().map(|t| &t.definitions);
        Some(Arc::new(self.history.body(plan, turn, tools)))
    }
}

/// Runs one turn as `run_one` does, returning how it ended and, when it ended well, its answer
/// and its output tokens.
async fn run_turn(
    step: &StepContext,
    job: Job,
    guard: InFlight,
) -> (Ending, Option<(Answer, u64)>) {
    let client = workers::client(&step.settings);
    let (record, answer) = execute_turn(&client, &step.shared, job).await;
    let tokens = record.output_tokens;
    let ending = hand_over(step, record, guard).await;
    (ending, ending.ok.then_some((answer, tokens)))
}

/// A conversation's messages so far, each with its token count.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    messages: Vec<Message>,
    tokens: Vec<u64>,
}

impl History {
    /// The first turn's messages; `total_tokens` (the first prompt's count) rides on the first
    /// message, which is never dropped when it is a system prompt: cutting history then never
    /// under-counts what is left.
    pub fn new(first: &[Message], total_tokens: u64) -> Self {
        let mut tokens = vec![0; first.len()];
        if let Some(head) = tokens.first_mut() {
            *head = total_tokens;
        }
        History {
            messages: first.to_vec(),
            tokens,
        }
    }

    pub fn push(&mut self, role: &str, content: String, tokens: u64) {
        self.messages.push(Message {
            role: role.into(),
            content,
            extras: None,
        });
        self.tokens.push(tokens);
    }

    /// As [`Self::push`], with tool calls or a tool result's call id.
    pub fn push_with(&mut self, role: &str, content: String, tokens: u64, extras: MessageExtras) {
        self.push(role, content, tokens);
        if let Some(m) = self.messages.last_mut() {
            m.extras = Some(Arc::new(extras));
        }
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn tokens(&self) -> u64 {
        self.tokens.iter().sum()
    }

    /// Drops the oldest exchanges (a user message and the answers up to the next user message;
    /// system messages stay) until `tokens() + max_tokens <= limit`, keeping at least the last
    /// user message. Returns how many exchanges were dropped.
    pub fn fit(&mut self, limit: Option<u64>, max_tokens: u64) -> u64 {
        let Some(limit) = limit else { return 0 };
        let mut dropped = 0;
        while self.tokens() + max_tokens > limit {
            let Some(start) = self.messages.iter().position(|m| m.role != "system") else {
                break;
            };
            // The exchange runs up to (not including) the next user message.
            let end = self.messages[start + 1..]
                .iter()
                .position(|m| m.role == "user")
                .map(|i| start + 1 + i);
            let Some(end) = end else { break };
            self.messages.drain(start..end);
            self.tokens.drain(start..end);
            dropped += 1;
        }
        dropped
    }

    /// The body of the turn whose user message (or tool results) was pushed last.
    pub fn body(
        &self,
        plan: &ChatPlan,
        turn: &UserTurn,
        tools: Option<&serde_json::Value>,
    ) -> PreparedBody {
        let body = match plan.endpoint {
            Endpoint::Chat => chat_body_with_tools(
                &plan.model,
                &self.messages,
                tools,
                turn.max_tokens,
                plan.ignore_eos,
                plan.reasoning_effort.as_deref(),
            ),
            Endpoint::Completions | Endpoint::Embeddings | Endpoint::Rerank => {
                let prompt: Vec<&str> = self.messages.iter().map(|m| m.content.as_str()).collect();
                completions_body(
                    &plan.model,
                    &prompt.join("\n"),
                    turn.max_tokens,
                    plan.ignore_eos,
                )
            }
            Endpoint::Responses => responses_body(
                &plan.model,
                &self.messages,
                None,
                turn.max_tokens,
                plan.ignore_eos,
                plan.reasoning_effort.as_deref(),
            ),
        };
        PreparedBody {
            body,
            prompt_tokens: self.tokens(),
            max_tokens: turn.max_tokens,
            images_tools: sent_figures(plan.endpoint, &self.messages, tools),
            inputs: 1,
        }
    }

    /// The Responses API's later turn: only the user message pushed last, on top of the
    /// server's state of `previous` (the previous answer's response id).
    pub fn follow_up(&self, plan: &ChatPlan, turn: &UserTurn, previous: &str) -> PreparedBody {
        let input = &self.messages[self.messages.len().saturating_sub(1)..];
        PreparedBody {
            body: responses_body(
                &plan.model,
                input,
                Some(previous),
                turn.max_tokens,
                plan.ignore_eos,
                plan.reasoning_effort.as_deref(),
            ),
            prompt_tokens: self.tokens(),
            max_tokens: turn.max_tokens,
            images_tools: Default::default(),
            inputs: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            extras: None,
        }
    }

    fn plan(endpoint: Endpoint) -> ChatPlan {
        let mut cfg = RunConfig::new("http://127.0.0.1:1");
        cfg.endpoint = endpoint;
        cfg.ignore_eos = false;
        ChatPlan::new(&cfg, "m", Vec::new(), &[])
    }

    fn text(answer: &str) -> Answer {
        Answer::from(answer)
    }

    fn turn(content: &str, tokens: u64) -> UserTurn {
        UserTurn {
            content: content.into(),
            tokens,
            max_tokens: Some(8),
        }
    }

    #[test]
    fn a_responses_turn_sends_only_its_input_and_the_previous_id() {
        let mut h = History::new(&[msg("system", "Be brief."), msg("user", "Hi")], 5);
        h.push("assistant", "Hello there".into(), 2);
        h.push("user", "How are you?".into(), 4);
        let body = h.follow_up(
            &plan(Endpoint::Responses),
            &turn("How are you?", 4),
            "resp_7",
        );
        let json: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model": "m",
                "input": [{"role": "user", "content": "How are you?"}],
                "previous_response_id": "resp_7",
                "max_output_tokens": 8,
                "stream": true,
            })
        );
        // The server counts the whole conversation it keeps.
        assert_eq!((body.prompt_tokens, body.inputs), (11, 1));
        // Without an id to continue, the whole history is sent.
        let whole = h.body(&plan(Endpoint::Responses), &turn("How are you?", 4), None);
        let json: serde_json::Value = serde_json::from_slice(&whole.body).unwrap();
        assert_eq!(json["input"].as_array().unwrap().len(), 4);
        assert!(json.get("previous_response_id").is_none());
    }

    #[test]
    fn turns_grow_with_the_answers_and_keep_the_system_prompt() {
        let mut h = History::new(&[msg("system", "Be brief."), msg("user", "Hi")], 5);
        h.push("assistant", "Hello there".into(), 2);
        h.push("user", "How are you?".into(), 4);
        assert_eq!(
            h.messages(),
            &[
                msg("system", "Be brief."),
                msg("user", "Hi"),
                msg("assistant", "Hello there"),
                msg("user", "How are you?"),
            ]
        );
        assert_eq!(h.tokens(), 11);
        let body = h.body(&plan(Endpoint::Chat), &turn("How are you?", 4), None);
        let v: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][2]["content"], "Hello there");
        assert_eq!(v["messages"][2]["role"], "assistant");
        assert_eq!(v["max_tokens"], 8);
        assert_eq!((body.prompt_tokens, body.max_tokens), (11, Some(8)));
        let body = h.body(&plan(Endpoint::Completions), &turn("How are you?", 4), None);
        let v: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        assert_eq!(v["prompt"], "Be brief.\nHi\nHello there\nHow are you?");
    }

    #[test]
    fn fitting_drops_the_oldest_exchanges_only() {
        let mut h = History::new(&[msg("system", "S")], 10);
        h.push("user", "u1".into(), 10);
        h.push("assistant", "a1".into(), 10);
        h.push("user", "u2".into(), 10);
        h.push("assistant", "a2".into(), 10);
        h.push("user", "u3".into(), 10);
        assert_eq!(h.tokens(), 60);
        let mut same = h.clone();
        assert_eq!(same.fit(None, 1000), 0);
        assert_eq!(same.fit(Some(70), 10), 0);
        assert_eq!(same, h);
        // 60 + 10 > 55: drop u1/a1 (→ 40 + 10 ≤ 55).
        assert_eq!(h.fit(Some(55), 10), 1);
        assert_eq!(
            h.messages(),
            &[
                msg("system", "S"),
                msg("user", "u2"),
                msg("assistant", "a2"),
                msg("user", "u3")
            ]
        );
        // Cannot fit: everything but the system prompt and the last user turn goes.
        assert_eq!(h.fit(Some(5), 10), 1);
        assert_eq!(h.messages(), &[msg("system", "S"), msg("user", "u3")]);
        assert_eq!(h.fit(Some(5), 10), 0);
    }

    #[test]
    fn sessions_advance_turn_by_turn_and_count_cuts() {
        let mut cfg = RunConfig::new("http://127.0.0.1:1");
        cfg.max_context_tokens = Some(40);
        let script = Arc::new(PreparedRequest {
            messages: vec![msg("system", "S"), msg("user", "u1")],
            prompt: "S\nu1".into(),
            prompt_tokens: 10,
            max_tokens: Some(8),
            later_turns: vec![turn("u2", 10), turn("u3", 10)],
            tools: None,
        });
        let plan = ChatPlan::new(&cfg, "m", vec![script.clone()], &[]);
        assert_eq!(plan.summary(), None);
        let mut session = Session::new(script);
        let body = session.advance(&plan, text("a1"), 10).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        let roles: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(v["messages"][2]["content"], "a1");
        assert_eq!(body.prompt_tokens, 30);
        // 50 + 8 > 40: both earlier exchanges go, the system prompt stays.
        let body = session.advance(&plan, text("a2"), 10).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        assert_eq!(v["messages"].as_array().unwrap().len(), 2);
        assert_eq!(v["messages"][1]["content"], "u3");
        assert!(session.advance(&plan, text("a3"), 10).is_none());
        let note = plan.summary().unwrap();
        assert!(
            note.contains("2 follow-up turns")
                && note.contains("1 of them truncated")
                && note.contains("2 oldest exchanges"),
            "{note}"
        );
    }

    #[test]
    fn tool_calls_are_sent_back_with_their_results_then_the_next_user_turn() {
        use crate::request::openai::ToolCall;
        use crate::workload::ToolScript;
        let cfg = RunConfig::new("http://127.0.0.1:1");
        let script = Arc::new(PreparedRequest {
            messages: vec![msg("user", "weather?")],
            prompt: "weather?".into(),
            prompt_tokens: 3,
            max_tokens: Some(8),
            later_turns: vec![turn("thanks", 1)],
            tools: Some(Arc::new(ToolScript {
                definitions: serde_json::json!([{"type": "function",
                    "function": {"name": "get_weather"}}]),
                results: vec![turn("21 C", 2)],
            })),
        });
        let plan = ChatPlan::new(&cfg, "m", vec![script.clone()], &[]);
        let mut session = Session::new(script);
        let call = ToolCall {
            id: "call_9".into(),
            name: "get_weather".into(),
            arguments: "{}".into(),
        };
        let answer = Answer {
            tool_calls: vec![call],
            ..Answer::default()
        };
        let body = session.advance(&plan, answer, 5).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        assert_eq!(v["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(v["messages"][1]["role"], "assistant");
        assert_eq!(v["messages"][1]["tool_calls"][0]["id"], "call_9");
        assert_eq!(v["messages"][2]["role"], "tool");
        assert_eq!(v["messages"][2]["tool_call_id"], "call_9");
        assert_eq!(v["messages"][2]["content"], "21 C");
        assert_eq!(
            (body.prompt_tokens, body.images_tools.tool_definitions),
            (10, 1)
        );
        // The answer after the result is text: the next user turn follows, tools still offered.
        let body = session.advance(&plan, text("It is 21 C."), 4).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
        assert_eq!(v["messages"][4]["content"], "thanks");
        assert!(v["tools"].is_array());
        assert!(session.advance(&plan, text("bye"), 1).is_none());
        assert!(plan
            .summary()
            .unwrap()
            .contains("(1 of them with tool results)"));
    }
}
