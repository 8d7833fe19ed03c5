// The show page's poll or quiz (one tap to vote, live bars) and giveaway (one tap to enter).
// The result of a closed poll stays a few seconds, then the box goes. A giveaway's winner
// is told by `prize_won` and leaves an email in the box's form (claim_prize). Texts come
// from the data-msg-* of <article class="show">; what staff wrote is inserted as text.
import { hide, make, show, text } from "../dom.js";
import { clock, format, plural } from "../words.js";

var LINGER_MS = 8000; // a closed poll's result stays this long

function stored(key, value) {
  try {
    if (value === undefined) return window.sessionStorage.getItem(key);
    window.sessionStorage.setItem(key, value);
  } catch (err) {
    /* no storage: the page forgets on reload, the server does not */
  }
  return null;
}

// page: {d, els, send, notice} of the show page (chat.js).
export function pollBox(page) {
  var d = page.d;
  var els = page.els;
  var poll = null;
  var mine = null; // the option this viewer chose
  var timer = null;
  var lingerTimer = null;

  function key(p) {
    return "vitrine.poll." + (d.showId || "") + "." + p.id;
  }

  function render() {
    if (!poll || !els.poll) return;
    var total = poll.counts.reduce(function (a, b) { return a + Number(b || 0); }, 0);
    var reveal = mine !== null || !poll.open;
    text(els.pollQuestion, poll.question);
    els.pollOptions.textContent = "";
    poll.options.forEach(function (label, i) {
      var li = make("li");
      var b = make("button", "poll-option");
      b.type = "button";
      b.dataset.option = String(i);
      b.disabled = !poll.open || mine !== null;
      var pct = total ? Math.round((100 * Number(poll.counts[i] || 0)) / total) : 0;
      var bar = make("span", "poll-bar");
      bar.style.width = (reveal ? pct : 0) + "%";
      b.appendChild(bar);
      b.appendChild(make("span", "poll-label", label));
      if (reveal) b.appendChild(make("span", "poll-pct", pct + " %"));
      if (mine === i) b.classList.add("is-mine");
      if (!poll.open && poll.correct !== null && poll.correct !== undefined) {
        b.classList.add(poll.correct === i ? "is-correct" : "is-wrong");
      }
      b.setAttribute("aria-pressed", mine === i ? "true" : "false");
      li.appendChild(b);
      els.pollOptions.appendChild(li);
    });
    var foot = plural(d, "msgPollVotes", total);
    if (poll.open) {
      foot += " · " + format(d.msgPollEnds, { t: clock(Number(poll.ends_at) - Date.now() / 1000) });
    } else if (poll.quiz && poll.correct !== null && poll.correct !== undefined) {
      foot += " · " + plural(d, "msgQuizRight", Number(poll.counts[poll.correct] || 0));
    } else {
      foot += " · " + d.msgPollClosed;
    }
    text(els.pollFoot, foot);
    els.poll.classList.toggle("is-closed", !poll.open);
    show(els.poll);
    document.body.dataset.pollState = poll.open ? "open" : "closed";
  }

  function apply(p) {
    clearTimeout(lingerTimer);
    if (!p) {
      poll = null;
      clearInterval(timer);
      timer = null;
      hide(els.poll);
      document.body.dataset.pollState = "";
      return;
    }
    if (!poll || poll.id !== p.id) {
      var was = stored(key(p));
      mine = was === null ? null : Number(was);
    }
    poll = p;
    render();
    if (poll.open && !timer) timer = setInterval(render, 1000);
    if (!poll.open) {
      clearInterval(timer);
      timer = null;
      lingerTimer = setTimeout(function () { apply(null); }, LINGER_MS);
    }
  }

  function onClick(event) {
    var b = event.target.closest("button[data-option]");
    if (!b || !poll || !poll.open || mine !== null) return;
    var option = Number(b.dataset.option);
    if (!page.send({ type: "vote", option: option })) {
      page.notice(d.msgNotSent || d.msgReconnecting);
      return;
    }
    mine = option;
    stored(key(poll), String(option));
    render();
  }

  return {
    apply: apply,
    // The server says this viewer already voted (another tab): show the bars anyway.
    onRefused: function (code) {
      if (code === "already_voted" && poll && mine === null) {
        mine = -1;
        render();
      }
    },
    wire: function () {
      if (els.pollOptions) els.pollOptions.addEventListener("click", onClick);
    }
  };
}

export function giveawayBox(page) {
  var d = page.d;
  var els = page.els;
  var giveaway = null;
  var entered = false;
  var won = null; // {id, claim_until}
  var claimed = false;

  function render() {
    if (!giveaway || !els.giveaway) {
      hide(els.giveaway);
      return;
    }
    text(els.giveawayPrize, giveaway.prize);
    var state = plural(d, "msgGiveawayEntrants", Number(giveaway.entrants || 0));
    if (giveaway.winner && won && won.id === giveaway.id) {
      state = d.msgGiveawayYours;
    } else if (giveaway.winner) {
      state = format(d.msgGiveawayWinner, { name: giveaway.winner.name || d.msgSomeone });
    } else if (entered) {
      state = d.msgGiveawayEntered + " · " + state;
    }
    text(els.giveawayState, state);
    if (giveaway.open && !entered) show(els.giveawayEnter);
    else hide(els.giveawayEnter);
    var mineNow = won && won.id === giveaway.id && !claimed;
    if (mineNow && Number(won.claim_until) > Date.now() / 1000) show(els.giveawayClaim);
    else hide(els.giveawayClaim);
    if (claimed && won && won.id === giveaway.id) text(els.giveawayState, d.msgGiveawayClaimed);
    show(els.giveaway);
  }

  function apply(g) {
    if (g && (!giveaway || giveaway.id !== g.id)) {
      entered = stored("vitrine.giveaway." + (d.showId || "") + "." + g.id) === "1";
    }
    giveaway = g || null;
    render();
  }

  function onEnter() {
    if (!giveaway || !page.send({ type: "enter" })) return;
    els.giveawayEnter.disabled = true;
    setTimeout(function () { els.giveawayEnter.disabled = false; }, 3000);
  }

  function onClaim(event) {
    event.preventDefault();
    var email = (els.giveawayEmail.value || "").trim();
    if (!email) {
      els.giveawayEmail.focus();
      return;
    }
    page.send({ type: "claim_prize", email: email });
  }

  return {
    apply: apply,
    onEntered: function (m) {
      if (!giveaway || giveaway.id !== m.id) return;
      entered = true;
      stored("vitrine.giveaway." + (d.showId || "") + "." + m.id, "1");
      render();
    },
    onWon: function (m) {
      won = { id: m.id, claim_until: m.claim_until };
      page.notice(format(d.msgGiveawayYouWon, { prize: m.prize || "" }), 0);
      render();
      if (els.giveawayEmail) els.giveawayEmail.focus();
    },
    onClaimed: function (m) {
      if (won && won.id === m.id) claimed = true;
      page.notice(null);
      render();
    },
    wire: function () {
      if (els.giveawayEnter) els.giveawayEnter.addEventListener("click", onEnter);
      if (els.giveawayClaim) els.giveawayClaim.addEventListener("submit", onClaim);
    }
  };
}
