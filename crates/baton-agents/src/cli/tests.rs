//! The parsers against output the real CLIs printed (trimmed to the fields that matter),
//! including the cases where their exit codes lie.

use super::*;

fn parser(kind: AgentKind, limits: Limits) -> CliParser {
    let dialect: Box<dyn Dialect> = match kind {
        AgentKind::Claude => Box::new(claude::StreamJson::new("claude")),
        AgentKind::Qwen => Box::new(claude::StreamJson::new("qwen")),
        AgentKind::Codex => Box::new(codex::Events::default()),
        AgentKind::Gemini => Box::new(gemini::Events::default()),
        AgentKind::Opencode => Box::new(opencode::Events::default()),
        AgentKind::Aider => Box::new(aider::Text::default()),
        AgentKind::Command | AgentKind::Patch => unreachable!(),
    };
    let program = CliInfo::of(kind).unwrap().program;
    CliParser::new(
        program,
        dialect,
        limits,
        Path::new("/ws/c1"),
        Path::new("/runs/r/c1/home"),
        Duration::from_secs(7),
    )
}

/// Feeds `lines` and returns every activity.
fn feed(p: &mut CliParser, lines: &str) -> Vec<AgentActivity> {
    lines.lines().flat_map(|l| p.line(l)).collect()
}

fn exited(code: i32) -> End {
    End::Exited { code }
}

fn failed(o: AgentOutcome) -> String {
    match o {
        AgentOutcome::Failed { reason } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

const CLAUDE_OK: &str = r#"{"type":"system","subtype":"init","cwd":"/ws/c1","session_id":"s1","model":"mock-model","permissionMode":"acceptEdits"}
{"type":"assistant","message":{"id":"m1","model":"mock-model","content":[{"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"/ws/c1/hello.txt","content":"hi\n"}}],"usage":{"input_tokens":100,"cache_read_input_tokens":50,"output_tokens":10}}}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"t1","type":"tool_result","content":"File created successfully at: /ws/c1/hello.txt"}]}}
{"type":"assistant","message":{"id":"m2","model":"mock-model","content":[{"type":"text","text":"Created hello.txt."}],"usage":{"input_tokens":200,"output_tokens":5}}}
{"type":"result","subtype":"success","is_error":false,"api_error_status":null,"num_turns":2,"result":"Created hello.txt.","total_cost_usd":0.19,"usage":{"input_tokens":300,"cache_read_input_tokens":50,"output_tokens":15},"permission_denials":[]}"#;

#[test]
fn claude_success_is_normalized() {
    let mut p = parser(AgentKind::Claude, Limits::default());
    let acts = feed(&mut p, CLAUDE_OK);
    assert_eq!(
        acts[0],
        AgentActivity::Started { model: Some("mock-model".into()), session: Some("s1".into()) }
    );
    assert!(acts.contains(&AgentActivity::ToolCall { tool: "Write".into(), detail: "hello.txt".into() }));
    assert!(acts.contains(&AgentActivity::ToolResult {
        tool: "Write".into(),
        ok: true,
        detail: "File created successfully at: /ws/c1/hello.txt".into()
    }));
    assert!(acts.contains(&AgentActivity::Message { text: "Created hello.txt.".into() }));
    assert!(acts.contains(&AgentActivity::Usage {
        turns: 2,
        input_tokens: 350,
        output_tokens: 15,
        cost_usd: Some(0.19),
        cost_estimated: false
    }));
    assert_eq!(
        acts.last(),
        Some(&AgentActivity::Finished { text: "Created hello.txt.".into(), turns: Some(2) })
    );
    // Success comes from the result event: even a SIGINT's exit 0 or a kill after it.
    assert_eq!(p.outcome(&End::Cancelled), AgentOutcome::Completed);
    assert_eq!(p.stop(), Some(Stop::After(Duration::from_secs(7))));
}

#[test]
fn claude_api_errors_and_missing_results_fail() {
    let mut p = parser(AgentKind::Claude, Limits::default());
    feed(
        &mut p,
        r#"{"type":"assistant","message":{"id":"x","model":"<synthetic>","content":[{"type":"text","text":"Invalid API key · Fix external API key"}]}}
{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"num_turns":1,"result":"Invalid API key · Fix external API key","total_cost_usd":0}"#,
    );
    assert_eq!(failed(p.outcome(&exited(1))), "API error 401: Invalid API key · Fix external API key");

    // SIGINT: Claude exits 0 without a result.
    let mut p = parser(AgentKind::Claude, Limits::default());
    feed(&mut p, CLAUDE_OK.lines().take(3).collect::<Vec<_>>().join("\n").as_str());
    assert_eq!(failed(p.outcome(&exited(0))), "claude exited with code 0 before its final `result` event");
    assert_eq!(p.stop(), None);
}

#[test]
fn qwen_api_errors_claim_success_but_fail() {
    let mut p = parser(AgentKind::Qwen, Limits::default());
    let acts = feed(
        &mut p,
        r#"{"type":"assistant","message":{"id":"a","model":"mock-model","content":[{"type":"text","text":"[API Error: 401 invalid x-api-key]"}],"usage":{"input_tokens":0,"output_tokens":0}}}
{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"[API Error: 401 invalid x-api-key]","usage":{"input_tokens":0,"output_tokens":0}}"#,
    );
    assert!(acts.contains(&AgentActivity::Error { message: "[API Error: 401 invalid x-api-key]".into() }));
    assert!(failed(p.outcome(&exited(0))).contains("401 invalid x-api-key"));
}

/// Codex reported success, but its own sandbox never let a command run: a failed candidate,
/// never "completed with no change".
#[test]
fn a_codex_whose_own_sandbox_failed_has_failed() {
    let mut p = parser(AgentKind::Codex, Limits::default());
    feed(
        &mut p,
        r#"{"type":"thread.started","thread_id":"th1"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'cat src/calc.sh'","aggregated_output":"bwrap: Can't mkdir /tmp/.git: Read-only file system\n","exit_code":1,"status":"failed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Fixed add() in src/calc.sh."}}
{"type":"turn.completed","usage":{"input_tokens":20,"cached_input_tokens":0,"output_tokens":2}}"#,
    );
    assert_eq!(
        failed(p.outcome(&exited(0))),
        "codex's own sandbox could not run its commands: bwrap: Can't mkdir /tmp/.git: Read-only file system"
    );
}

#[test]
fn codex_turns_and_failures() {
    let mut p = parser(AgentKind::Codex, Limits::default());
    let acts = feed(
        &mut p,
        r#"{"type":"thread.started","thread_id":"th1"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `mock-model` not found."}}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'echo hi > a.txt'","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'echo hi > a.txt'","aggregated_output":"","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done."}}
{"type":"turn.completed","usage":{"input_tokens":20227,"cached_input_tokens":0,"output_tokens":26}}"#,
    );
    assert!(acts.contains(&AgentActivity::ToolCall {
        tool: "shell".into(),
        detail: "/bin/bash -lc 'echo hi > a.txt'".into()
    }));
    assert!(acts.contains(&AgentActivity::Usage {
        turns: 2,
        input_tokens: 20227,
        output_tokens: 26,
        cost_usd: None,
        cost_estimated: false
    }));
    assert_eq!(p.outcome(&exited(0)), AgentOutcome::Completed);

    let mut p = parser(AgentKind::Codex, Limits::default());
    feed(
        &mut p,
        r#"{"type":"error","message":"Reconnecting... 1/5 (unexpected status 401 Unauthorized)"}
{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: invalid x-api-key"}}"#,
    );
    // Stopped at the first retry of the 401, in the CLI's words.
    assert_eq!(
        failed(p.outcome(&exited(1))),
        "Reconnecting... 1/5 (unexpected status 401 Unauthorized) (stopped at once: retrying cannot fix this)"
    );
}

#[test]
fn gemini_joins_deltas_and_exit_zero_without_result_fails() {
    let mut p = parser(AgentKind::Gemini, Limits::default());
    let acts = feed(
        &mut p,
        r#"{"type":"init","session_id":"g1","model":"mock-model"}
{"type":"message","role":"user","content":"make hello"}
{"type":"tool_use","tool_name":"write_file","tool_id":"w1","parameters":{"content":"hi","file_path":"hello.txt"}}
{"type":"tool_result","tool_id":"w1","status":"success"}
{"type":"message","role":"assistant","content":"Created ","delta":true}
{"type":"message","role":"assistant","content":"hello.txt.","delta":true}
{"type":"result","status":"success","stats":{"total_tokens":25231,"input_tokens":25209,"output_tokens":22}}"#,
    );
    assert!(acts.contains(&AgentActivity::Message { text: "Created hello.txt.".into() }));
    assert!(acts.contains(&AgentActivity::ToolResult {
        tool: "write_file".into(),
        ok: true,
        detail: String::new()
    }));
    assert_eq!(p.outcome(&exited(0)), AgentOutcome::Completed);

    let mut p = parser(AgentKind::Gemini, Limits::default());
    feed(
        &mut p,
        r#"{"type":"init","session_id":"g1","model":"mock-model"}
{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: 401 invalid x-api-key]"},"stats":{}}"#,
    );
    assert_eq!(failed(p.outcome(&exited(145))), "[API Error: 401 invalid x-api-key]");
    let mut p = parser(AgentKind::Gemini, Limits::default());
    feed(&mut p, r#"{"type":"init","session_id":"g1","model":"mock-model"}"#);
    assert_eq!(failed(p.outcome(&exited(0))), "gemini exited with code 0 before its final `result` event");
}

#[test]
fn opencode_needs_a_stop_and_no_error() {
    let mut p = parser(AgentKind::Opencode, Limits::default());
    let acts = feed(
        &mut p,
        r#"{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"tool_use","sessionID":"ses_1","part":{"type":"tool","tool":"write","callID":"c0","state":{"status":"completed","input":{"content":"hi","filePath":"/ws/c1/hello.txt"},"output":"Wrote file successfully."}}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"tool-calls","tokens":{"input":100,"output":10,"reasoning":0,"cache":{"read":0,"write":0}},"cost":0}}
{"type":"step_start","sessionID":"ses_1","part":{"type":"step-start"}}
{"type":"text","sessionID":"ses_1","part":{"type":"text","text":"Created hello.txt."}}
{"type":"step_finish","sessionID":"ses_1","part":{"reason":"stop","tokens":{"input":120,"output":5,"reasoning":0,"cache":{"read":0,"write":0}},"cost":0}}"#,
    );
    assert!(acts.contains(&AgentActivity::Usage {
        turns: 2,
        input_tokens: 220,
        output_tokens: 15,
        cost_usd: None,
        cost_estimated: false
    }));
    assert_eq!(p.outcome(&exited(0)), AgentOutcome::Completed);

    let mut p = parser(AgentKind::Opencode, Limits::default());
    feed(
        &mut p,
        r#"{"type":"error","sessionID":"ses_1","error":{"name":"APIError","data":{"message":"invalid x-api-key","statusCode":401,"isRetryable":false}}}"#,
    );
    assert_eq!(failed(p.outcome(&exited(1))), "API error 401: invalid x-api-key");
}

#[test]
fn aider_exits_zero_on_api_errors_but_fails() {
    let mut p = parser(AgentKind::Aider, Limits::default());
    let acts = feed(
        &mut p,
        "Aider v0.86.2\nModel: openai/mock-model with whole edit format\nhello.txt\nTokens: 2.5k sent, 17 received. Cost: $0.01 message, $0.03 session.\nApplied edit to hello.txt\n",
    );
    assert_eq!(acts[0], AgentActivity::Started { model: Some("openai/mock-model".into()), session: None });
    assert!(acts.contains(&AgentActivity::Usage {
        turns: 1,
        input_tokens: 2500,
        output_tokens: 17,
        cost_usd: Some(0.03),
        cost_estimated: false
    }));
    assert!(acts.contains(&AgentActivity::ToolCall { tool: "edit".into(), detail: "hello.txt".into() }));
    assert_eq!(p.outcome(&exited(0)), AgentOutcome::Completed);

    let mut p = parser(AgentKind::Aider, Limits::default());
    feed(
        &mut p,
        "Aider v0.86.2\nlitellm.AuthenticationError: AuthenticationError: OpenAIException - invalid \nx-api-key\n",
    );
    assert_eq!(
        failed(p.outcome(&exited(0))),
        "litellm.AuthenticationError: AuthenticationError: OpenAIException - invalid (stopped at once: retrying cannot fix this)"
    );
}

#[test]
fn garbage_silence_and_writes_outside_the_workspace_are_reported() {
    let mut p = parser(AgentKind::Claude, Limits::default());
    let acts = feed(&mut p, "Segmentation fault\n\u{1b}[31mboom");
    assert_eq!(
        acts,
        [AgentActivity::Warning {
            message: "claude printed a line that is not a JSON event: Segmentation fault".into()
        }]
    );
    assert_eq!(
        failed(p.outcome(&exited(0))),
        "claude exited with code 0 and printed no JSON events (first line: Segmentation fault)"
    );
    let p = parser(AgentKind::Codex, Limits::default());
    assert_eq!(failed(p.outcome(&exited(1))), "codex exited with code 1 without printing anything");
    assert_eq!(
        p.outcome(&End::TimedOut { kind: baton_core::TimeoutKind::Silence }),
        AgentOutcome::TimedOut { kind: baton_core::TimeoutKind::Silence }
    );

    let mut p = parser(AgentKind::Gemini, Limits::default());
    let acts = feed(
        &mut p,
        r#"{"type":"tool_use","tool_name":"write_file","tool_id":"w1","parameters":{"content":"x","file_path":"../c2/stolen.txt"}}
{"type":"tool_use","tool_name":"write_file","tool_id":"w2","parameters":{"content":"x","file_path":"/runs/r/c1/home/.gemini/notes"}}
{"type":"tool_use","tool_name":"replace","tool_id":"w3","parameters":{"file_path":"/etc/hosts","old_string":"a","new_string":"b"}}
{"type":"tool_use","tool_name":"write_file","tool_id":"w4","parameters":{"content":"x","file_path":"src/ok.rs"}}"#,
    );
    let warnings: Vec<&AgentActivity> =
        acts.iter().filter(|a| matches!(a, AgentActivity::Warning { .. })).collect();
    assert_eq!(
        warnings,
        [
            &AgentActivity::Warning {
                message: "gemini wrote /ws/c2/stolen.txt, outside its workspace".into()
            },
            &AgentActivity::Warning { message: "gemini wrote /etc/hosts, outside its workspace".into() },
        ]
    );
}

#[test]
fn budgets_stop_the_agent() {
    let limits = Limits { max_tokens: Some(300), ..Limits::default() };
    let mut p = parser(AgentKind::Claude, limits);
    let acts = feed(&mut p, &CLAUDE_OK.lines().take(4).collect::<Vec<_>>().join("\n"));
    assert!(
        acts.contains(&AgentActivity::Warning {
            message: "stopped after 365 tokens: max_tokens is 300".into()
        })
    );
    assert_eq!(p.stop(), Some(Stop::Now));
    assert_eq!(failed(p.outcome(&End::Cancelled)), "stopped after 365 tokens: max_tokens is 300");

    let mut p = parser(AgentKind::Opencode, Limits { max_turns: Some(1), ..Limits::default() });
    feed(&mut p, "{\"type\":\"step_start\",\"part\":{}}\n{\"type\":\"step_start\",\"part\":{}}");
    assert_eq!(failed(p.outcome(&End::Cancelled)), "stopped after 2 turns: max_turns is 1");
}

#[test]
fn versions_are_read_from_any_banner() {
    assert_eq!(parse_version("2.1.197 (Claude Code)"), Some((2, 1, 197)));
    assert_eq!(parse_version("codex-cli 0.169.0"), Some((0, 169, 0)));
    assert_eq!(parse_version("aider 0.86.2\n"), Some((0, 86, 2)));
    assert_eq!(parse_version("no version here"), None);
}

/// Issue 15, item 1: Claude Code retried a 401 ten times (over three minutes), although its
/// first retry event said `authentication_failed`. Lines as Claude Code 2.1.197 printed them.
#[test]
fn a_rejected_key_stops_the_agent_at_the_first_retry() {
    let mut p = parser(AgentKind::Claude, Limits::default());
    let acts = feed(
        &mut p,
        r#"{"type":"system","subtype":"init","cwd":"/ws/c1","session_id":"s1","model":"mock-model"}
{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":500.2,"error_status":401,"error":"authentication_failed","session_id":"s1"}"#,
    );
    assert_eq!(p.stop(), Some(Stop::Now));
    let reason = failed(p.outcome(&End::Signaled { signal: 15 }));
    assert_eq!(reason, "API error 401 (authentication_failed) (stopped at once: retrying cannot fix this)");
    assert!(acts.contains(&AgentActivity::Error { message: reason }));

    // Codex retries a 401 as if the connection had dropped (0.169).
    let mut p = parser(AgentKind::Codex, Limits::default());
    feed(
        &mut p,
        r#"{"type":"thread.started","thread_id":"t1"}
{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 1/5 (unexpected status 401 Unauthorized: invalid x-api-key, url: http://127.0.0.1:9/v1/responses)"}"#,
    );
    assert_eq!(p.stop(), Some(Stop::Now));
    assert!(failed(p.outcome(&exited(0))).contains("unexpected status 401 Unauthorized"));

    // A rate limit passes with time: retried as the CLI sees fit.
    let mut p = parser(AgentKind::Claude, Limits::default());
    feed(
        &mut p,
        r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":500,"error_status":429,"error":"rate_limit"}"#,
    );
    assert_eq!(p.stop(), None);
    assert!(is_fatal(Some(429), "You exceeded your current quota, please check your plan"));
    assert!(!is_fatal(Some(429), "rate limited"));
}

/// Issue 15, item 2: Codex pointed at an endpoint it ignores printed "Reconnecting..." until
/// the 30-minute wall limit. Three reports in a row that the endpoint cannot be reached end
/// the candidate with the CLI's words; an answer in between resets the count.
#[test]
fn an_endpoint_reported_unreachable_three_times_in_a_row_fails_the_agent() {
    let waiting = r#"{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}"#;
    let mut p = parser(AgentKind::Codex, Limits::default());
    feed(&mut p, &format!("{{\"type\":\"turn.started\"}}\n{waiting}\n{waiting}"));
    assert_eq!(p.stop(), None);
    feed(&mut p, waiting);
    assert_eq!(p.stop(), Some(Stop::Now));
    assert_eq!(
        failed(p.outcome(&End::Signaled { signal: 15 })),
        "stopped: codex reported 3 times in a row that it cannot reach its model endpoint: Reconnecting... waiting for network (Connection failed: error sending request)"
    );

    let refused = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":3,"retry_delay_ms":509,"error_status":null,"error":"unknown"}"#;
    let answer = r#"{"type":"assistant","message":{"id":"m1","model":"mock-model","content":[{"type":"text","text":"Working."}],"usage":{"input_tokens":1,"output_tokens":1}}}"#;
    let mut p = parser(AgentKind::Claude, Limits::default());
    feed(&mut p, &[refused, refused, answer, refused, refused].join("\n"));
    assert_eq!(p.stop(), None, "the model answered in between");
    feed(&mut p, refused);
    assert_eq!(p.stop(), Some(Stop::Now));
    assert!(failed(p.outcome(&exited(1))).ends_with("API request got no answer (unknown)"));
}

/// Issue 15, item 5: a cost the CLI reported, at its vendor's list prices, for a model served
/// locally. With a custom base_url it is marked as the CLI's estimate; a `price` gives the real
/// cost, which max_cost_usd then uses.
#[test]
fn a_price_gives_the_real_cost_and_a_local_models_list_price_is_an_estimate() {
    let usage = |acts: &[AgentActivity]| {
        acts.iter()
            .rev()
            .find_map(|a| match a {
                AgentActivity::Usage { cost_usd, cost_estimated, .. } => Some((*cost_usd, *cost_estimated)),
                _ => None,
            })
            .unwrap()
    };
    // CLAUDE_OK reports $0.19 for 350 tokens in and 15 out.
    let mut p = parser(AgentKind::Claude, Limits { own_endpoint: true, ..Limits::default() });
    assert_eq!(usage(&feed(&mut p, CLAUDE_OK)), (Some(0.19), true));
    let mut p = parser(AgentKind::Claude, Limits::default());
    assert_eq!(usage(&feed(&mut p, CLAUDE_OK)), (Some(0.19), false), "the vendor's own endpoint");

    let priced = Limits { own_endpoint: true, price: Some((2.0, 10.0)), ..Limits::default() };
    let mut p = parser(AgentKind::Claude, priced);
    let (cost, estimated) = usage(&feed(&mut p, CLAUDE_OK));
    assert!((cost.unwrap() - (350.0 * 2.0 + 15.0 * 10.0) / 1e6).abs() < 1e-12, "{cost:?}");
    assert!(!estimated);

    // The budget counts the real price, not the CLI's $0.19.
    let mut p = parser(AgentKind::Claude, Limits { max_cost_usd: Some(0.01), ..priced });
    feed(&mut p, CLAUDE_OK);
    assert_eq!(p.outcome(&exited(0)), AgentOutcome::Completed);
    let mut p = parser(AgentKind::Claude, Limits { max_cost_usd: Some(0.0001), ..priced });
    feed(&mut p, CLAUDE_OK.lines().take(2).collect::<Vec<_>>().join("\n").as_str());
    assert_eq!(
        failed(p.outcome(&End::Signaled { signal: 15 })),
        "stopped after $0.0004: max_cost_usd is 0.0001"
    );
}

/// A CLI's version kept from an earlier run holds while its file is unchanged and for a day;
/// a changed file, or an old entry, is asked again.
#[test]
fn a_kept_cli_version_holds_only_while_its_file_is_unchanged_and_fresh() {
    use super::VersionCache;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("tool");
    std::fs::write(&program, "#!/bin/sh\necho tool 1.2.3\n").unwrap();
    let cache = VersionCache::at(dir.path().join("cache/cli-versions.json"));
    assert_eq!(cache.get(&program), None, "nothing kept yet");
    cache.put(&program, (1, 2, 3));
    assert_eq!(cache.get(&program), Some((1, 2, 3)));
    // Another program, through a link to the same file: kept under its own name.
    let link = dir.path().join("tool-link");
    std::os::unix::fs::symlink(&program, &link).unwrap();
    assert_eq!(cache.get(&link), None);
    // The file changed (an upgrade): asked again.
    std::fs::write(&program, "#!/bin/sh\necho tool 1.10.0 (upgraded)\n").unwrap();
    assert_eq!(cache.get(&program), None);
    cache.put(&program, (1, 10, 0));
    assert_eq!(cache.get(&program), Some((1, 10, 0)));
    // An entry older than a day: asked again.
    let file = dir.path().join("cache/cli-versions.json");
    let old = std::fs::read_to_string(&file).unwrap().replace("\"at\":", "\"at\":1,\"was\":");
    std::fs::write(&file, old).unwrap();
    assert_eq!(cache.get(&program), None);
}
