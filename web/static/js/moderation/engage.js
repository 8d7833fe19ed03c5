// The moderation panel's poll or quiz and giveaway: starting them, live counts, the draw's proof.
// Staff see the seed hash and entrant count of each draw (giveaway_draw) as the server
// logged them. Texts come from the data-msg-* of #moderation; what people wrote is text.
import { hide, make, show, text } from "../dom.js";
import { clock, format, plural, timeOfDay } from "../words.js";

// page: {d, els, send, notice} of the moderation panel (moderation.js).
export function pollControls(page) {
  var d = page.d;
  var els = page.els;
  var poll = null;
  var timer = null;

  function render() {
    if (!poll) {
      hide(els.pollLive);
      return;
    }
    text(els.pollQuestion, poll.question);
    els.pollResults.textContent = "";
    var total = poll.counts.reduce(function (a, b) { return a + Number(b || 0); }, 0);
    poll.options.forEach(function (label, i) {
      var li = make("li", poll.correct === i ? "is-correct" : null);
      li.appendChild(make("span", "poll-label", label));
      li.appendChild(make("span", "poll-pct", String(poll.counts[i] || 0)));
      els.pollResults.appendChild(li);
    });
    var foot = plural(d, "msgPollVotes", total);
    if (poll.open) foot += " · " + format(d.msgPollEnds, { t: clock(Number(poll.ends_at) - Date.now() / 1000) });
    else if (poll.quiz && poll.correct !== null && poll.correct !== undefined) {
      foot += " · " + plural(d, "msgQuizRight", Number(poll.counts[poll.correct] || 0));
    } else foot += " · " + d.msgPollClosed;
    text(els.pollFoot, foot);
    if (els.pollEnd) els.pollEnd.disabled = !poll.open;
    show(els.pollLive);
  }

  function apply(p) {
    poll = p || null;
    render();
    clearInterval(timer);
    timer = poll && poll.open ? setInterval(render, 1000) : null;
  }

  function onStart(event) {
    event.preventDefault();
    var options = [];
    els.pollOptionInputs.forEach(function (input) {
      var v = (input.value || "").trim();
      if (v) options.push(v);
    });
    var question = (els.pollQuestionInput.value || "").trim();
    if (!question || options.length < 2) {
      els.pollQuestionInput.focus();
      return;
    }
    var msg = { type: "start_poll", question: question, options: options, seconds: Number(els.pollSeconds.value) || 60 };
    if (els.pollCorrect.value !== "") msg.correct = Number(els.pollCorrect.value);
    if (!page.send(msg)) return;
    els.pollForm.reset();
  }

  return {
    apply: apply,
    wire: function () {
      if (els.pollForm) els.pollForm.addEventListener("submit", onStart);
      if (els.pollEnd) els.pollEnd.addEventListener("click", function () { page.send({ type: "end_poll" }); });
    }
  };
}

export function giveawayControls(page) {
  var d = page.d;
  var els = page.els;
  var giveaway = null;
  var proof = null;

  function render() {
    if (!giveaway) {
      hide(els.giveawayLive);
      return;
    }
    text(els.giveawayPrize, giveaway.prize);
    var state = plural(d, "msgGiveawayEntrants", Number(giveaway.entrants || 0));
    if (giveaway.winner) state += " · " + format(d.msgGiveawayWinner, { name: giveaway.winner.name || d.msgSomeone });
    text(els.giveawayState, state);
    if (proof && proof.id === giveaway.id) {
      var line = format(d.msgGiveawayProof, { draw: proof.draw, n: proof.entrants, hash: proof.seed_hash });
      line += " · " + (proof.claimed ? d.msgGiveawayClaimed : format(d.msgGiveawayWaiting, { t: timeOfDay(proof.claim_until) }));
      if (proof.email) line += " · " + proof.email;
      text(els.giveawayProof, line);
      show(els.giveawayProof);
    } else {
      hide(els.giveawayProof);
    }
    show(els.giveawayLive);
  }

  function onStart(event) {
    event.preventDefault();
    var prize = (els.giveawayPrizeInput.value || "").trim();
    if (!prize) {
      els.giveawayPrizeInput.focus();
      return;
    }
    var msg = {
      type: "start_giveaway",
      prize: prize,
      entrants: els.giveawayEntrants.value,
      claim_seconds: Number(els.giveawayClaimSeconds.value) || 120
    };
    if (page.send(msg)) els.giveawayForm.reset();
  }

  return {
    apply: function (g) {
      giveaway = g || null;
      render();
    },
    onDraw: function (m) {
      proof = m;
      render();
    },
    wire: function () {
      if (els.giveawayForm) els.giveawayForm.addEventListener("submit", onStart);
      if (els.giveawayDraw) els.giveawayDraw.addEventListener("click", function () { page.send({ type: "draw" }); });
    }
  };
}
