/* Swagger UI over this service's own /openapi.json (a file beside this page, not inline: the page's
 * Content-Security-Policy allows scripts from this origin only). "Try it out" sends requests to this
 * same origin; authorise with an API key (Bearer) first. */
(function () {
  "use strict";
  function start() {
    var target = document.getElementById("swagger-ui");
    if (typeof window.SwaggerUIBundle !== "function") {
      target.textContent = "The API reference could not load its script. The raw document is at /openapi.json.";
      return;
    }
    // "openapi.json" resolves against /docs (or /<stage>/docs) to the service's own document.
    window.ui = window.SwaggerUIBundle({
      url: new URL("openapi.json", window.location.href).href,
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      tryItOutEnabled: false,
      persistAuthorization: false,
      validatorUrl: null,
      syntaxHighlight: { activated: true, theme: "agate" },
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
