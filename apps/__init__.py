"""The browser demo of ``translate`` (Gradio): ``translate demo`` or ``build_app()`` in
:mod:`apps.demo`. It uses only the inference API (:mod:`translate.infer.engine`), never
training code."""
