#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/r1r.json (Grafana 10/11 schema) from the panel list below.

Every r1r_* name used here is registered somewhere under common/ or services/; deploy/check.py
verifies that. Run: python3 deploy/grafana/make_dashboard.py
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'service=~"$service", instance=~"$instance"'
W = "$window"

panels = []
_next_id = [1]
_y = [0]
_x = [0]


def _pid():
    _next_id[0] += 1
    return _next_id[0] - 1


def row(title):
    if _x[0] != 0:
        _x[0] = 0
        _y[0] += 8
    panels.append({"type": "row", "title": title, "id": _pid(), "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y[0]}, "panels": []})
    _y[0] += 1


def panel(title, targets, unit, kind="timeseries", w=8, h=8, desc="", stack=False, legend=True,
          minv=None, maxv=None):
    if not unit or not desc:
        raise SystemExit(f"panel {title!r}: every panel needs a unit and a description")
    if _x[0] + w > 24:
        _x[0] = 0
        _y[0] += h
    p = {
        "type": kind,
        "title": title,
        "id": _pid(),
        "datasource": DS,
        "description": desc,
        "gridPos": {"h": h, "w": w, "x": _x[0], "y": _y[0]},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend_fmt,
             "range": True, "instant": False}
            for i, (expr, legend_fmt) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {"unit": unit, "custom": {}}, "overrides": []},
        "options": {},
    }
    d = p["fieldConfig"]["defaults"]
    if minv is not None:
        d["min"] = minv
    if maxv is not None:
        d["max"] = maxv
    if kind == "timeseries":
        d["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if stack else 0,
                       "showPoints": "never", "spanNulls": True,
                       "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
        p["options"] = {"legend": {"displayMode": "table" if legend else "hidden", "placement": "bottom",
                                   "calcs": ["lastNotNull", "max"], "showLegend": legend},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto", "orientation": "auto"}
    elif kind == "bargauge":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True}
    panels.append(p)
    _x[0] += w
    if _x[0] >= 24:
        _x[0] = 0
        _y[0] += h


def q(p, metric, by, extra=""):
    """histogram_quantile over a *_seconds histogram."""
    sel = "{" + extra + "}" if extra else ""
    return f"histogram_quantile({p}, sum by (le{', ' + by if by else ''}) (rate({metric}_bucket{sel}[{W}])))"


def mean(metric, by, extra=""):
    sel = "{" + extra + "}" if extra else ""
    return (f"sum by ({by}) (rate({metric}_sum{sel}[{W}])) / "
            f"sum by ({by}) (rate({metric}_count{sel}[{W}]))")


# ---------------------------------------------------------------------------------------- overview
row("Overview")
panel("Processes up", [("r1r_up", "{{service}} {{instance}}")], unit="bool", kind="stat", w=6, h=5,
      desc="r1r_up is 1 while a process serves gRPC. A missing series means the target is down (see Prometheus targets).")
panel("Policy version", [("max(r1r_orchestrator_policy_version)", "orchestrator"),
                         ("max(r1r_learner_policy_version)", "learner"),
                         ("r1r_actor_policy_version", "actor {{instance}}"),
                         ("max(r1r_serve_policy_version)", "serve")], unit="none", kind="stat", w=6, h=5,
      desc="Actors should hold the learner's version after each weight sync; -1 = no weights loaded. Serve shows "
           "the version of the published checkpoint it serves (only with a model).")
panel("Jobs finished", [("sum by (outcome) (increase(r1r_orchestrator_jobs_total[$__range]))", "{{outcome}}")],
      unit="none", kind="stat", w=4, h=5,
      desc="Jobs that ended in the dashboard's time range, by outcome (succeeded / failed / cancelled).")
panel("Policy parameters", [("max(r1r_learner_parameters)", "trainable")], unit="short", kind="stat", w=3, h=5,
      desc="Trainable parameters of the policy the learner holds (set when a phase starts).")
panel("Held-out accuracy by stage", [("r1r_eval_accuracy_ratio", "accuracy {{stage}}"),
                                     ("r1r_eval_format_rate_ratio", "format {{stage}}")],
      unit="percentunit", kind="bargauge", w=5, h=5, minv=0, maxv=1,
      desc="Held-out evaluation after each stage (base, sft, rl): share of pairs judged correctly (voting@K) and "
           "share of well-formed answers.")
panel("Last phase wall time", [("r1r_orchestrator_phase_seconds", "{{phase}}")], unit="s", kind="bargauge",
      w=24, h=5, desc="Wall seconds of the last run of each job phase (data, tokenizer, sft, eval, rl, publish).")

# ---------------------------------------------------------------------------------------- RL
row("RL: StableReinforce")
panel("Reward", [("r1r_learner_reward_mean", "learner: mean total reward (rollout)"),
                 ("r1r_reward_mean", "reward service: mean total (last request)")], unit="none",
      desc="Total reward 0.5*format + result*(1 + 0.5*consistency): at most 2.0.")
panel("Reward components", [("r1r_reward_format_rate", "format"), ("r1r_reward_result_rate", "result (correct answer)"),
                            ("r1r_reward_consistency_rate", "consistency (referee)")],
      unit="percentunit", minv=0, maxv=1,
      desc="Shares of the last scored request: well-formed responses, correct answers, and responses whose "
           "reasoning the referee found consistent with the answer.")
panel("Clip, pre-clip and advantage filter", [("r1r_rl_clip_fraction", "ratio clipped (eps_clip)"),
                                              ("r1r_rl_preclip_fraction", "log-ratio pre-clipped"),
                                              ("r1r_rl_adv_filtered_fraction", "dropped by 3-sigma filter")],
      unit="percentunit", minv=0,
      desc="Shares of tokens. A rising pre-clip fraction means the policy drifts from the behaviour policy.")
panel("KL", [("r1r_rl_approx_kl", "approx KL(old || new) per update"),
             ("r1r_rl_kl", "KL(policy || reference), only when rl.kl_coef > 0")], unit="none",
      desc="nats per token. approx KL(old || new): how far each update moves the policy from the one that "
           "generated the rollout; computed on every RL step. KL(policy || reference) needs the reference "
           "(SFT) model, which the learner loads only when rl.kl_coef > 0; with kl_coef 0 (configs/demo.yaml, "
           "configs/paper_7b.yaml) that series is absent because it is not computed, not because it is 0.")
panel("Loss", [("r1r_learner_loss", "{{phase}}")], unit="none",
      desc="Loss of the last learner step: SFT cross-entropy (nats per token) or the StableReinforce objective.")
panel("Gradient norm (before clipping)", [("r1r_learner_grad_norm", "{{phase}}")], unit="none",
      desc="Global L2 norm of the gradient of the last step, before grad_clip.")
panel("Learning rate", [("r1r_learner_learning_rate", "{{phase}}")], unit="sci",
      desc="Learning rate of the last optimizer step (warm-up, then cosine decay to min_lr_ratio).")
panel("Response length", [("r1r_learner_response_length_tokens", "mean response tokens")], unit="short",
      desc="Mean length of the last rollout's responses in tokens (max_new_tokens caps it).")
panel("Actor / learner log-prob mismatch", [("r1r_learner_logprob_mismatch_nats", "mean |actor - learner| per token")],
      unit="none", desc="nats per token; large values mean the actor's replica differs from the learner's.")
panel("Optimizer steps and skipped steps", [
    ("sum by (phase) (increase(r1r_learner_optimizer_steps_total[$window]))", "optimizer steps {{phase}}"),
    ("sum by (phase) (increase(r1r_learner_skipped_steps_total[$window]))", "skipped (non-finite) {{phase}}"),
    ("sum by (phase) (increase(r1r_learner_steps_total[$window]))", "learner calls {{phase}}"),
    ("sum(increase(r1r_orchestrator_learner_recoveries_total[$window]))", "phases resumed after a learner restart"),
    ("sum(increase(r1r_orchestrator_actor_recoveries_total[$window]))", "generations retried after an actor restart")],
      unit="none", w=16,
      desc="Counts per rate window. Skipped: optimizer steps dropped for a non-finite loss or gradient. Resumed: "
           "the orchestrator ran SFT or RL again from the last checkpoint after the learner restarted. Retried: an "
           "actor lost its weights and got them again.")

# ---------------------------------------------------------------------------------------- step time
row("Step time")
panel("RL step time by part (mean per step)", [(mean("r1r_orchestrator_rl_part_seconds", "part"), "{{part}}")],
      unit="s", stack=True, w=12,
      desc="generation (actors), reward (reward + judge), learner (the StableReinforce step), weight_sync.")
panel("RL step wall time", [(q(0.5, "r1r_orchestrator_rl_step_seconds", ""), "p50"),
                            (q(0.95, "r1r_orchestrator_rl_step_seconds", ""), "p95")], unit="s", w=12,
      desc="Wall time of one whole RL step (generation, reward, learner, weight sync) seen by the orchestrator.")
panel("Learner step by part (mean)", [(mean("r1r_learner_step_part_seconds", "phase, part"), "{{phase}} {{part}}")],
      unit="s", stack=True, desc="Forward, backward and optimizer time of one learner step, by phase.")
panel("Learner step wall time p95", [(q(0.95, "r1r_learner_step_seconds", "phase"), "{{phase}} p95"),
                                     (mean("r1r_learner_step_seconds", "phase"), "{{phase}} mean")], unit="s",
      desc="Wall time of one SftStep / RlStep call on the learner.")
panel("Throughput", [("r1r_learner_tokens_per_second", "learner {{phase}}"),
                     ("r1r_actor_tokens_per_second", "actor {{instance}}"),
                     ("r1r_serve_tokens_per_second", "serve")], unit="short",
      desc="tokens per second of the last step / call / batch")
panel("Checkpoint write time", [(mean("r1r_learner_checkpoint_seconds", "service"), "mean"),
                                (q(0.95, "r1r_learner_checkpoint_seconds", ""), "p95")], unit="s", w=12,
      desc="Time to write a training checkpoint (weights, optimizer state, state.json).")
panel("Actor rollout call time", [(q(0.5, "r1r_actor_rollout_seconds", "instance"), "p50 {{instance}}"),
                                  (q(0.95, "r1r_actor_rollout_seconds", "instance"), "p95 {{instance}}")],
      unit="s", w=12, desc="Wall time of one GenerateRollouts call on each actor.")

# ---------------------------------------------------------------------------------------- weight sync
row("Weight sync")
panel("Weight sync time", [(mean("r1r_orchestrator_weight_sync_seconds", "service"), "all actors (orchestrator)"),
                           (mean("r1r_actor_weight_sync_seconds", "instance"), "actor pull+load {{instance}}"),
                           (mean("r1r_learner_weight_sync_seconds", "service"), "learner encode+stream")], unit="s",
      desc="Mean seconds per weight sync: all actors loaded (orchestrator), one actor's pull and load, and the "
           "learner encoding and streaming one copy.")
panel("Weight bytes", [("sum(rate(r1r_learner_weight_sync_bytes_total[$window]))", "learner streamed"),
                       ("sum by (instance) (rate(r1r_actor_weight_sync_bytes_total[$window]))", "actor pulled {{instance}}")],
      unit="Bps", desc="Weight bytes per second streamed by the learner and pulled by each actor.")
panel("Weight sync failures", [("sum by (instance) (increase(r1r_actor_weight_sync_failures_total[$window]))",
                                "{{instance}}")], unit="none",
      desc="Weight pulls that failed per rate window, by actor (0 in a healthy run).")

# ---------------------------------------------------------------------------------------- actors
row("Actors")
panel("Trajectories / s", [("sum by (instance) (rate(r1r_actor_trajectories_total[$window]))", "{{instance}}")],
      unit="short", desc="Trajectories generated per second by each actor (RL rollouts and evaluation samples).")
panel("Generated tokens / s", [("sum by (instance) (rate(r1r_actor_generated_tokens_total[$window]))", "{{instance}}")],
      unit="short", desc="Response tokens generated per second by each actor.")
panel("GenerateRollouts in flight", [("r1r_actor_inflight_requests", "{{instance}}")], unit="none",
      desc="GenerateRollouts calls in progress on each actor.")

# ---------------------------------------------------------------------------------------- reward & judge
row("Reward and judge")
panel("Judge verdicts / s", [("sum by (verdict) (rate(r1r_judge_verdicts_total[$window]))", "{{verdict}}")],
      unit="short", stack=True,
      desc="consistent / inconsistent / unknown (the referee's reply could not be parsed).")
panel("Judge latency", [(q(0.95, "r1r_judge_batch_seconds", ""), "judge batch p95"),
                        (q(0.95, "r1r_reward_judge_seconds", ""), "reward waits for judge p95")], unit="s",
      desc="Time to judge one batch (judge) and the reward service's wait for the judge per request.")
panel("Judge and reward errors", [
    ("sum(increase(r1r_judge_backend_errors_total[$window]))", "judge backend errors"),
    ("sum(increase(r1r_judge_rejected_requests_total[$window]))", "judge rejected requests"),
    ("sum(increase(r1r_reward_judge_failures_total[$window]))", "reward: judge failed after retries")], unit="none",
      desc="Per rate window (0 in a healthy run): batches the referee backend could not answer, requests the "
           "judge rejected, judge batches the reward service gave up on after retries.")
panel("Items / s", [("sum(rate(r1r_judge_items_total[$window]))", "judged"),
                    ("sum(rate(r1r_reward_trajectories_total[$window]))", "trajectories scored")], unit="short",
      w=24, h=6, desc="Responses judged by the referee and trajectories scored by the reward service, per second.")

# ---------------------------------------------------------------------------------------- serve
row("Serve (RewardModel)")
panel("Requests / s", [("sum by (rpc, outcome) (rate(r1r_serve_requests_total[$window]))", "{{rpc}} {{outcome}}")],
      unit="reqps", stack=True, desc="Compare / Rank / Reload requests per second by outcome.")
panel("Compare latency", [(q(0.5, "r1r_serve_compare_seconds", ""), "p50"),
                          (q(0.95, "r1r_serve_compare_seconds", ""), "p95"),
                          (q(0.99, "r1r_serve_compare_seconds", ""), "p99")], unit="s",
      desc="Wall time of one Compare call (all K votes).")
panel("Rank latency", [(q(0.5, "r1r_serve_rank_seconds", ""), "p50"),
                       (q(0.95, "r1r_serve_rank_seconds", ""), "p95")], unit="s",
      desc="Wall time of one Rank call (every pair of responses compared).")
panel("Batching", [(mean("r1r_serve_batch_size", "service"), "mean batch size (sequences)"),
                   ("r1r_serve_queue_depth_sequences", "queue depth (sequences)")], unit="short",
      desc="Sequences generated together per batch, and sequences waiting for a batch.")
panel("Generation batch time", [(q(0.5, "r1r_serve_batch_seconds", ""), "p50"),
                                (q(0.95, "r1r_serve_batch_seconds", ""), "p95")], unit="s",
      desc="Wall time of one generation batch on serve.")
panel("Generated tokens / s and batch errors", [
    ("sum(rate(r1r_serve_generated_tokens_total[$window]))", "tokens/s"),
    ("sum(increase(r1r_serve_batch_errors_total[$window]))", "failed batches")], unit="short",
      desc="Tokens generated per second by serve; failed generation batches per rate window (0 when healthy).")
panel("Checkpoint reloads", [("sum(increase(r1r_serve_reload_seconds_count[$window]))", "reloads")], unit="none",
      w=24, h=5, desc="Checkpoints serve swapped in per rate window (r1r reload, or --reload-poll-seconds "
                      "finding a newer published version).")

# ---------------------------------------------------------------------------------------- RPC
row("gRPC (every service)")
panel("Requests / s by method", [(f"sum by (service, method) (rate(r1r_rpc_requests_total{{{SEL}}}[{W}]))",
                                  "{{service}} {{method}}")], unit="reqps",
      desc="RPCs handled per second by each service, by method.")
panel("Errors / s by method and code", [
    (f'sum by (service, method, code) (rate(r1r_rpc_requests_total{{{SEL}, code!="OK"}}[{W}]))',
     "{{service}} {{method}} {{code}}")], unit="reqps",
      desc="RPCs answered with a status other than OK, per second (e.g. UNAVAILABLE while a peer restarts, "
           "FAILED_PRECONDITION from serve without a model).")
panel("Latency p95 by method", [
    (f"histogram_quantile(0.95, sum by (le, service, method) (rate(r1r_rpc_request_seconds_bucket{{{SEL}}}[{W}])))",
     "{{service}} {{method}}")], unit="s", desc="95th percentile RPC handling time by service and method.")
panel("Handler exceptions", [(f"sum by (service) (increase(r1r_rpc_handler_exceptions_total{{{SEL}}}[{W}]))",
                              "{{service}}")], unit="none", w=24, h=5,
      desc="C++ exceptions caught at the edge of an RPC handler (answered INTERNAL) or a worker thread, per rate "
           "window (0 in a healthy run; each one is a bug).")

# ---------------------------------------------------------------------------------------- process
row("Processes")
panel("CPU (cores)", [(f"sum by (service, instance) (rate(process_cpu_seconds_total{{{SEL}}}[{W}]))",
                       "{{service}} {{instance}}")], unit="short", desc="CPU seconds per second (cores busy) per process.")
panel("Resident memory", [(f"process_resident_memory_bytes{{{SEL}}}", "{{service}} {{instance}}")], unit="bytes",
      desc="Resident set size per process.")
panel("Open file descriptors", [(f"process_open_fds{{{SEL}}}", "{{service}} {{instance}}")], unit="none",
      desc="Open file descriptors per process.")


def var_query(name, label, query, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "includeAll": True, "multi": multi, "allValue": ".*", "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


dashboard = {
    "uid": "r1r-overview",
    "title": "r1r: training and serving",
    "description": "R1-Reward / StableReinforce services: RL health, step time, weight sync, judge, serve, RPCs.",
    "tags": ["r1r"],
    "timezone": "utc",
    "editable": True,
    "graphTooltip": 1,
    "refresh": "10s",
    "schemaVersion": 39,
    "version": 1,
    "time": {"from": "now-1h", "to": "now"},
    "annotations": {"list": []},
    "links": [],
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {"selected": True, "text": "Prometheus", "value": "r1r-prometheus"}, "hide": 0,
         "includeAll": False, "multi": False, "regex": ""},
        var_query("service", "Service", "label_values(r1r_up, service)"),
        var_query("instance", "Instance", 'label_values(r1r_up{service=~"$service"}, instance)'),
        {"name": "window", "label": "Rate window", "type": "custom", "query": "1m,5m,15m,1h",
         "current": {"selected": True, "text": "5m", "value": "5m"},
         "options": [{"selected": v == "5m", "text": v, "value": v} for v in ["1m", "5m", "15m", "1h"]],
         "includeAll": False, "multi": False, "hide": 0},
    ]},
    "panels": panels,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards", "r1r.json")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
print(f"wrote {out}: {sum(1 for p in panels if p['type'] != 'row')} panels")
