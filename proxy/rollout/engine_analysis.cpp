// The rollout engine's automated analysis (docs/analysis.md): the run's lifecycle, the interval
// timer, provider queries and the decisions they lead to. See engine.h; control thread only.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "rollout/engine.h"

namespace canary::rollout {

namespace {

// Counters are cumulative since the process started; a smaller value means they restarted
// (a new worker set), so the whole value is new.
std::uint64_t since(std::uint64_t now, std::uint64_t base) { return now >= base ? now - base : now; }

analysis::variant_sample minus(const analysis::variant_sample& a,
                               const analysis::variant_sample& b) {
  analysis::variant_sample d;
  d.requests = since(a.requests, b.requests);
  d.bad = since(a.bad, b.bad);
  for (std::size_t k = 0; k < d.slow.size(); ++k) d.slow[k] = since(a.slow[k], b.slow[k]);
  d.total = since(a.total, b.total);
  d.errors = since(a.errors, b.errors);
  for (std::size_t k = 0; k < d.latency.size(); ++k)
    d.latency[k] = since(a.latency[k], b.latency[k]);
  return d;
}

struct counts {
  int successful, failed, inconclusive, errors;
};

std::map<std::string, counts> counts_of(const analysis::run_state& run) {
  std::map<std::string, counts> out;
  for (const auto& m : run.metrics)
    out[m.name] = counts{m.successful, m.failed, m.inconclusive, m.errors};
  return out;
}

bool live(const route_state& s) {
  return s.canary_active() && (s.phase == phase::progressing || s.phase == phase::paused);
}

// What the analysis gate does with `s` now: nothing (not gated), let it move on, or hold it
// with a message.
struct gate {
  enum class what { none, pass, wait } act = what::none;
  bool inline_step = false;
  std::string message;
};

gate gate_of(const route_state& s, const config::route_config& route, wall_time now) {
  gate g;
  if (!route.analysis || !s.analysis.active || !s.analysis.run) return g;
  const auto& cfg = *route.analysis;
  const auto& run = *s.analysis.run;
  if (at_analysis_step(s, route) && s.phase == phase::progressing && s.pause_deadline &&
      *s.pause_deadline <= now) {
    const auto& names = route.steps[s.step].metrics;
    g.inline_step = true;
    if (cfg.dry_run || analysis::inline_step_passed(run, cfg, names)) {
      g.act = gate::what::pass;
      return g;
    }
    g.act = gate::what::wait;
    g.message = "waiting for analysis: " + analysis::waiting_for(run, cfg, names).value_or("");
    return g;
  }
  if (tick_due(s, now) && !cfg.dry_run) {
    // A timed pause ends only when every metric's last measurement is Successful: a canary
    // that gets no traffic never advances.
    if (auto w = analysis::waiting_for(run, cfg, {})) {
      g.act = gate::what::wait;
      g.message = "waiting for analysis: " + *w;
    } else {
      g.act = gate::what::pass;
    }
  }
  return g;
}

}  // namespace

void sync_analysis_run(route_state& s, const config::route_config& route, wall_time now) {
  auto& slot = s.analysis;
  if (!route.analysis) {
    if (slot.active) {
      slot.active = false;
      ++slot.revision;
    }
    return;
  }
  const auto& cfg = *route.analysis;
  const bool wanted =
      live(s) && (cfg.background || (slot.active && slot.canary == s.canary) ||
                  at_analysis_step(s, route));
  if (slot.active && (!wanted || slot.canary != s.canary)) {
    // Completed (the judged canary is now stable): the run ends Successful unless it failed.
    if (slot.run && s.canary.empty() && s.stable == slot.canary) analysis::complete_run(*slot.run);
    slot.active = false;
    ++slot.revision;
  }
  if (wanted && !slot.active) {
    ++slot.runs;
    slot.run = analysis::start_run(cfg, route.name + "-" + std::to_string(slot.runs), now);
    slot.active = true;
    slot.canary = s.canary;
    ++slot.revision;
  }
}

std::function<void(const config::metric_config&, const analysis::template_vars&,
                   std::function<void(analysis::provider_result)>)>
http_provider(analysis::http_client& client) {
  return [&client](const config::metric_config& m, const analysis::template_vars& vars,
                   std::function<void(analysis::provider_result)> done) {
    if (m.what == config::metric_config::kind::prometheus) {
      client.send(analysis::prometheus_request(m, vars),
                  [done = std::move(done)](analysis::http_response r) {
                    done(analysis::prometheus_result(r));
                  });
    } else {
      client.send(analysis::web_request(m, vars),
                  [done = std::move(done), path = m.json_path](analysis::http_response r) {
                    done(analysis::web_result(r, path));
                  });
    }
  };
}

void engine::set_analysis_inputs(sampler_fn sampler, provider_fn provider) {
  sampler_ = std::move(sampler);
  provider_ = std::move(provider);
}

analysis::interval_sample engine::take_delta(const std::string& route, analysis_clock& clk) {
  if (!sampler_) return {};
  const auto now = sampler_(route);
  analysis::interval_sample d;
  d.stable = minus(now.stable, clk.baseline.stable);
  d.canary = minus(now.canary, clk.baseline.canary);
  clk.baseline = now;
  return d;
}

void engine::analysis_after_change(const route_state& before, route_state& st,
                                   const config::route_config& route, wall_time now) {
  sync_analysis_run(st, route, now);
  auto& slot = st.analysis;
  if (!slot.active || !slot.run || !route.analysis) return;
  const bool same_run =
      before.analysis.active && before.analysis.run && before.analysis.run->id == slot.run->id;
  if (!same_run) return;
  if (before.weight != st.weight) {
    // The canary/stable split changed: the counts so far form one stratum of the test.
    auto it = analysis_clocks_.find(route.name);
    if (it != analysis_clocks_.end() && it->second.run_id == slot.run->id && sampler_) {
      analysis::add_stratum(*slot.run, *route.analysis, take_delta(route.name, it->second));
      ++slot.revision;
    }
  }
  // resume / promote out of an analysis hold: the inconclusive streaks start again.
  if (before.phase == phase::paused && before.paused_by == paused_by::analysis &&
      !(st.phase == phase::paused &&
        (st.paused_by == paused_by::analysis || st.paused_by == paused_by::user))) {
    analysis::reset_inconclusive(*slot.run);
    ++slot.revision;
  }
}

void engine::analysis_tick(wall_time now) {
  for (const auto& r : cfg_->routes) {
    if (!r.analysis) continue;
    const auto& cur = states_.at(r.name);
    if (!cur.analysis.active || !cur.analysis.run) {
      analysis_clocks_.erase(r.name);
      continue;
    }
    const auto& cfg = *r.analysis;
    auto& clk = analysis_clocks_[r.name];
    if (clk.run_id != cur.analysis.run->id) {
      // A new run, or the first tick after a start: the counts so far belong to no interval
      // of this process; a restarted run resumes its counts and measures one interval later.
      clk = analysis_clock{};
      clk.run_id = cur.analysis.run->id;
      clk.next_due = cur.analysis.run->started + cfg.initial_delay + cfg.interval;
      if (clk.next_due <= now) clk.next_due = now + cfg.interval;
      if (sampler_) clk.baseline = sampler_(r.name);
    }
    if (sampler_ && !clk.measuring && now >= clk.next_due) {
      clk.next_due += cfg.interval;
      if (clk.next_due <= now) clk.next_due = now + cfg.interval;
      start_measurement(r, cur, clk, now);
      continue;  // finish_measurement may have changed the state and applied the gates
    }
    const auto g = gate_of(cur, r, now);
    if (g.act == gate::what::none || (g.act == gate::what::wait && g.message == cur.message))
      continue;
    route_state st = cur;
    if (analysis_gates(st, r, now)) {
      state_map changed;
      changed.emplace(r.name, std::move(st));
      if (commit_routes(std::move(changed)).status != 200)
        spdlog::warn("analysis: route \"{}\" holds until the state can be saved", r.name);
    }
  }
}

bool engine::analysis_gates(route_state& st, const config::route_config& route, wall_time now) {
  const auto g = gate_of(st, route, now);
  switch (g.act) {
    case gate::what::none:
      return false;
    case gate::what::wait:
      if (st.message == g.message) return false;
      st.message = g.message;
      st.updated_at = now;
      return true;
    case gate::what::pass: {
      const route_state before = st;
      if (g.inline_step) {
        const auto n = std::to_string(st.step + 1) + "/" + std::to_string(route.steps.size());
        complete_analysis_step(st, route, cause::analysis,
                               "Rollout step " + n + " completed (analysis passed)", now);
      } else {
        rollout::tick(st, route, now);
      }
      analysis_after_change(before, st, route, now);
      return true;
    }
  }
  return false;
}

void engine::start_measurement(const config::route_config& route, const route_state& st,
                               analysis_clock& clk, wall_time /*now*/) {
  const auto delta = take_delta(route.name, clk);
  std::vector<const config::metric_config*> asks;
  for (const auto& m : route.analysis->metrics)
    if (m.what == config::metric_config::kind::prometheus ||
        m.what == config::metric_config::kind::web)
      asks.push_back(&m);
  // `rollout` webhooks are judged with the interval's measurement, like metrics named after
  // them (2xx Successful, anything else Failed).
  std::vector<const config::webhook_config*> hooks;
  if (hooks_ != nullptr)
    for (const auto& h : route.webhooks)
      if (h.type == config::webhook_config::kind::rollout) hooks.push_back(&h);
  if (!provider_) asks.clear();
  if (asks.empty() && hooks.empty()) {
    finish_measurement(route.name, clk.run_id, delta, {});
    return;
  }
  // The measurement is taken when every provider has answered (or timed out): the control
  // thread never waits for them.
  struct pending {
    std::string route, run_id;
    analysis::interval_sample delta;
    std::map<std::string, analysis::provider_result> answers;
    std::size_t left = 0;
  };
  auto p = std::make_shared<pending>();
  p->route = route.name;
  p->run_id = clk.run_id;
  p->delta = delta;
  p->left = asks.size() + hooks.size();
  clk.measuring = true;
  const analysis::template_vars vars{route.name, st.stable, st.canary, route.analysis->interval};
  std::weak_ptr<int> alive = alive_;
  auto answered = [this, alive, p](const std::string& name, analysis::provider_result res) {
    if (alive.expired()) return;
    p->answers[name] = std::move(res);
    if (--p->left != 0) return;
    if (auto it = analysis_clocks_.find(p->route);
        it != analysis_clocks_.end() && it->second.run_id == p->run_id)
      it->second.measuring = false;
    finish_measurement(p->route, p->run_id, p->delta, p->answers);
  };
  for (const auto* m : asks)
    provider_(*m, vars, [answered, name = m->name](analysis::provider_result res) {
      answered(name, std::move(res));
    });
  for (const auto* h : hooks) {
    analysis::webhook_payload payload;
    payload.route = route.name;
    payload.phase = std::string(to_string(st.phase));
    payload.stable = st.stable;
    payload.canary = st.canary;
    payload.step = st.step;
    payload.weight = st.weight;
    payload.event = "rollout";
    payload.message = st.message;
    hooks_->call(route.name, *h, payload,
                 [answered, name = h->name](analysis::webhook_result res) {
                   analysis::provider_result r;
                   if (res.status != 0) {
                     r.status = analysis::provider_result::status::value;
                     r.value = res.status;
                   } else {
                     r.message = res.detail;
                   }
                   answered(name, std::move(r));
                 });
  }
}

void engine::finish_measurement(const std::string& route, const std::string& run_id,
                                const analysis::interval_sample& delta,
                                const std::map<std::string, analysis::provider_result>& answers) {
  if (writes_held_) return;
  const auto* r = cfg_->find_route(route);
  auto it = states_.find(route);
  if (r == nullptr || !r->analysis || it == states_.end()) return;
  const auto& cur = it->second;
  // The run ended or was replaced while the providers answered: the answers are for nobody.
  if (!cur.analysis.active || !cur.analysis.run || cur.analysis.run->id != run_id) return;
  const auto now = clock_();
  route_state st = cur;
  auto& run = *st.analysis.run;
  const auto before = counts_of(run);
  const auto d = analysis::measure(run, *r->analysis, delta, answers, now);
  ++st.analysis.revision;
  for (const auto& entry : counts_of(run)) {
    // Not a structured binding: clang 14 (the sanitizer builds) cannot capture one in a lambda.
    const auto& name = entry.first;
    const auto& c = entry.second;
    const auto b = before.count(name) ? before.at(name) : counts{0, 0, 0, 0};
    auto add = [&](const char* ph, int n) {
      if (n > 0) measurement_counts_[{route, name, ph}] += static_cast<std::uint64_t>(n);
    };
    add("Successful", c.successful - b.successful);
    add("Failed", c.failed - b.failed);
    add("Inconclusive", c.inconclusive - b.inconclusive);
    add("Error", c.errors - b.errors);
  }
  if (d.act == analysis::decision::action::abort) {
    spdlog::warn("analysis: route \"{}\": {}", route, d.message);
    (void)rollout::abort(st, *r, now, cause::analysis, d.message);
  } else if (d.act == analysis::decision::action::pause) {
    spdlog::warn("analysis: route \"{}\": {}", route, d.message);
    hold(st, *r, paused_by::analysis, cause::analysis, d.message, now);
  }
  analysis_after_change(cur, st, *r, now);
  analysis_gates(st, *r, now);
  state_map changed;
  changed.emplace(route, std::move(st));
  if (auto res = commit_routes(std::move(changed)); res.status != 200)
    spdlog::error("analysis: route \"{}\": the measurement could not be saved: {}", route,
                  res.error);
}

}  // namespace canary::rollout
