// The player's tools: share (Web Share API, else copy the link), picture-in-picture where
// the browser has it, the video's orientation (a landscape video is shown whole) and the
// visual viewport's height (the on-screen keyboard must not push the video away).
import { $ } from "../dom.js";

// The link to share: the page without its query; on a replay, ?t= at the current chapter.
export function shareLink(video) {
  var url = window.location.origin + window.location.pathname;
  if (!document.querySelector("article.replay") || !video) return url;
  var t = Math.floor(video.currentTime || 0);
  var now = document.querySelector("#chapters li.chapter.is-current");
  if (now) t = Math.floor(Number(now.dataset.t) || 0);
  return t > 0 ? url + "?t=" + t : url;
}

export function tools(video, notice, d) {
  var share = $("share");
  if (share) {
    share.addEventListener("click", function () {
      var url = shareLink(video);
      document.body.dataset.shareUrl = url; // for browser tests
      if (navigator.share) {
        navigator.share({ title: d.shareTitle, url: url }).catch(function () {});
        return;
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(url).then(
          function () { notice(d.msgCopied); },
          function () { notice(url, 0); }
        );
      } else {
        notice(url, 0); // the viewer copies it by hand
      }
    });
  }

  var pip = $("pip");
  if (pip && video && document.pictureInPictureEnabled && !video.disablePictureInPicture) {
    pip.hidden = false;
    pip.addEventListener("click", function () { togglePip(video); });
  }

  if (video) {
    var stage = $("stage");
    var orient = function () {
      if (!stage || !video.videoWidth) return;
      stage.classList.toggle("is-landscape", video.videoWidth > video.videoHeight);
    };
    video.addEventListener("loadedmetadata", orient);
    video.addEventListener("resize", orient);
  }

  // The keyboard shrinks the visual viewport, not the layout one: size the player to it.
  var vv = window.visualViewport;
  if (vv) {
    var fit = function () {
      document.documentElement.style.setProperty("--vvh", Math.round(vv.height) + "px");
    };
    vv.addEventListener("resize", fit);
    fit();
  }
}

export function togglePip(video, onlyEnter) {
  if (!video || !document.pictureInPictureEnabled) return;
  if (document.pictureInPictureElement) {
    if (!onlyEnter) document.exitPictureInPicture().catch(function () {});
    return;
  }
  if (video.readyState < 1) return;
  video.requestPictureInPicture().catch(function () {});
}
