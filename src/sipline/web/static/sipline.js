// sipline's dashboard: a few behaviours on top of server-rendered pages; every page works without them
"use strict";

// Live rows: a table with data-live re-reads its rows from that URL every 2 s (docs/behaviour.md#dashboard)
function followLive(table) {
  const body = table.querySelector("tbody");
  const refresh = async () => {
    try {
      const answer = await fetch(table.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (answer.ok) {
        const html = await answer.text();
        if (html !== body.dataset.last) { body.innerHTML = html; body.dataset.last = html; }
      }
    } catch (error) { /* the next round tries again */ }
  };
  setInterval(refresh, 2000);
}

// Copy buttons: data-copy names the element whose text goes to the clipboard
function copyButton(button) {
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = "Copied";
    } catch (error) {
      const range = document.createRange();
      range.selectNodeContents(source);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  });
}

// Show buttons: data-show names a hidden element to reveal (a secret shown only on request)
function showButton(button) {
  button.addEventListener("click", () => {
    const target = document.getElementById(button.dataset.show);
    target.hidden = !target.hidden;
    button.setAttribute("aria-expanded", String(!target.hidden));
    button.textContent = target.hidden ? "Show" : "Hide";
  });
}

// Forms with data-confirm ask before they are sent
function confirmForm(form) {
  form.addEventListener("submit", (event) => {
    if (!confirm(form.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table[data-live]").forEach(followLive);
  document.querySelectorAll("button[data-copy]").forEach(copyButton);
  document.querySelectorAll("button[data-show]").forEach(showButton);
  document.querySelectorAll("form[data-confirm]").forEach(confirmForm);
});
