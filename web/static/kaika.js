// Kaika's web companion: small, plain progressive enhancement. Every page works without it.
"use strict";

const kaika = {
  // The CSRF token of this session (base.html puts it in <meta name="csrf-token">).
  csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  },

  // fetch() with the CSRF token in the X-CSRF-Token header, which every POST, PUT, PATCH and DELETE needs.
  fetch(url, options = {}) {
    const headers = new Headers(options.headers || {});
    headers.set("X-CSRF-Token", kaika.csrfToken());
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    return fetch(url, { credentials: "same-origin", ...options, headers });
  },
};

// <form data-confirm="Delete this job?">: asks before submitting.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// <form data-autosubmit>: submitted as soon as the page loads (the sign-in link's page: a person's browser
// signs in at once, while a link preview, which runs no script, never spends the link).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autosubmit]");
  if (form) form.requestSubmit();
});

window.kaika = kaika;
