// Progressive enhancement of the voting page: without this file the form posts and the
// server redirects back (303); with it, votes go through fetch, the voter's vote is followed
// from pending to recorded, and the result bars follow GET /results/stream.
"use strict";

(function () {
  const app = document.getElementById("app");
  const form = document.getElementById("vote-form");
  const yourVote = document.getElementById("your-vote");
  if (!app || !form || !yourVote) return;

  const cookieName = app.dataset.voteCookie || "last_vote";
  let followed = null;

  function describe(vote) {
    const option = vote.option ? " for " + vote.option : "";
    switch (vote.state) {
      case "pending":
        return "Your vote" + option + " is pending: accepted, waiting to be counted.";
      case "recorded":
        return vote.ballot === "superseded"
          ? "Your vote" + option + " was recorded, then replaced by a later vote."
          : "Your vote" + option + " is recorded.";
      case "dead_lettered":
        return "Your vote could not be counted: " + (vote.reason || "unknown reason") + ".";
      default:
        return "";
    }
  }

  function show(state, text, ballot) {
    yourVote.dataset.state = state;
    yourVote.dataset.ballot = ballot || "";
    yourVote.textContent = text;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // Poll GET /votes/{id} until the vote leaves "pending"; a newer vote stops the old loop.
  async function follow(id) {
    followed = id;
    let delay = 300;
    while (followed === id) {
      let vote = null;
      try {
        const response = await fetch("votes/" + encodeURIComponent(id), { cache: "no-store" });
        if (response.status === 404) {
          show("none", "");
          return;
        }
        if (response.ok) vote = await response.json();
      } catch (error) {
        vote = null; // network trouble: keep the last shown state and try again
      }
      if (followed !== id) return;
      if (vote) {
        show(vote.state, describe(vote), vote.ballot);
        if (vote.state !== "pending") return;
      }
      await sleep(delay);
      delay = Math.min(delay * 1.5, 3000);
    }
  }

  async function castVote(option) {
    show("sending", "Sending your vote for " + option + "…");
    let response;
    try {
      response = await fetch("vote", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ option: option }),
        credentials: "same-origin",
      });
    } catch (error) {
      show("error", "Your vote was not sent: the server could not be reached. Please try again.");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status !== 202 || !body.id) {
      show("error", "Your vote was not accepted: " + (body.error || "HTTP " + response.status) + ".");
      return;
    }
    document.cookie = cookieName + "=" + encodeURIComponent(body.id) +
      "; path=/; max-age=31536000; samesite=lax";
    show("pending", describe({ state: "pending", option: option }));
    follow(body.id);
  }

  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (!button || !button.value) return; // let the browser post the form itself
    event.preventDefault();
    castVote(button.value);
  });

  function percent(share) {
    return (share * 100).toFixed(1) + "%";
  }

  function row(option) {
    const body = document.querySelector("#results tbody");
    for (const tr of body.rows) {
      if (tr.dataset.option === option) return tr;
    }
    const tr = document.createElement("tr");
    tr.dataset.option = option;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = option;
    const votes = document.createElement("td");
    votes.className = "votes";
    const bar = document.createElement("td");
    bar.className = "bar";
    const progress = document.createElement("progress");
    progress.max = 1;
    progress.setAttribute("aria-label", "Share of " + option);
    const share = document.createElement("span");
    share.className = "share";
    bar.append(progress, " ", share);
    tr.append(th, votes, bar);
    body.append(tr);
    return tr;
  }

  function render(results) {
    for (const item of results.options) {
      const tr = row(item.option);
      tr.querySelector(".votes").textContent = String(item.votes);
      tr.querySelector("progress").value = item.share;
      tr.querySelector("progress").textContent = percent(item.share);
      tr.querySelector(".share").textContent = percent(item.share);
    }
    document.getElementById("total").textContent = String(results.total);
    document.getElementById("total-noun").textContent = results.total === 1 ? "vote" : "votes";
    document.getElementById("backlog").textContent =
      results.backlog === null ? "an unknown number of" : String(results.backlog);
    const asOf = document.getElementById("as-of");
    if (asOf) {
      asOf.dateTime = results.as_of;
      asOf.textContent = results.as_of.slice(11, 19) + " UTC";
    }
    const error = document.getElementById("results-error");
    if (error) error.remove();
  }

  if ("EventSource" in window) {
    const source = new EventSource("results/stream");
    source.addEventListener("results", (event) => render(JSON.parse(event.data)));
  }

  const lastVote = app.dataset.lastVote;
  if (lastVote && yourVote.dataset.state === "pending") follow(lastVote);
})();
