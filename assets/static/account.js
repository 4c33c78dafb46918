// The end-user pages' only script: the copy button next to the manual setup code. Loaded from
// /static (the CSP allows no inline script).
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) { return; }
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) { return; }
  navigator.clipboard.writeText(el.textContent.replace(/\s+/g, "")).then(function () {
    b.textContent = "Copied";
  });
});
