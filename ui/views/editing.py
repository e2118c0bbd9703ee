"""Editing a model and its versions in the UI (docs/ui.md, "Editing"): descriptions, tags,
rename and deletion. Each form calls the service the API calls, with ``actor=request.user``, so
it is refused exactly where the API would refuse; the page shows a form only to those whose level
allows it. A refusal goes back to the page with the message and what was typed
(``base.refuse``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from registry import services
from ui import forms
from ui.views.base import ui_form
from ui.views.models import model_page, model_refusal
from ui.views.versions import to_version, version_page, version_refusal


def _to_model(name: str, anchor: str = "") -> HttpResponse:
    return redirect(model_page(name) + (f"#{anchor}" if anchor else ""))


@ui_form(model_page)
def model_description(request: SignedInHttpRequest, name: str) -> HttpResponse:
    form = forms.DescriptionForm(request.POST, prefix="d")
    try:
        if not form.is_valid():
            raise RegistryError.invalid("The description is too long.")
        services.registered_model_update(
            actor=request.user, name=name, description=form.cleaned_data["description"]
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "about")
    messages.success(request, "Description saved.")
    return _to_model(name, "about")


@ui_form(model_page)
def model_tag_set(request: SignedInHttpRequest, name: str) -> HttpResponse:
    form = forms.TagForm(request.POST, prefix="tag")
    try:
        if not form.is_valid():
            raise RegistryError.invalid("Name the tag's key.")
        services.registered_model_tag_set(
            actor=request.user,
            name=name,
            key=form.cleaned_data["key"],
            value=form.cleaned_data["value"],
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "about")
    messages.success(request, f"Tag {form.cleaned_data['key']} set.")
    return _to_model(name, "about")


@ui_form(model_page)
def model_tag_delete(request: SignedInHttpRequest, name: str) -> HttpResponse:
    key = request.POST.get("key", "")
    try:
        services.registered_model_tag_delete(actor=request.user, name=name, key=key)
    except RegistryError as exc:
        return model_refusal(request, name, exc, "about")
    messages.success(request, f"Tag {key} deleted.")
    return _to_model(name, "about")


@ui_form(model_page)
def model_rename(request: SignedInHttpRequest, name: str) -> HttpResponse:
    form = forms.RenameForm(request.POST, prefix="rn")
    try:
        if not form.is_valid():
            raise RegistryError.invalid("Type the new name.")
        renamed = services.registered_model_rename(
            actor=request.user, name=name, new_name=form.cleaned_data["new_name"].strip()
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "manage")
    messages.success(request, f"Renamed {name} to {renamed.name}.")
    return _to_model(renamed.name)


@ui_form(model_page)
def model_delete(request: SignedInHttpRequest, name: str) -> HttpResponse:
    form = forms.ConfirmNameForm(request.POST, prefix="del")
    try:
        if not form.is_valid() or form.cleaned_data["confirm"].strip() != name:
            raise RegistryError.invalid(f"Type the model's name, {name}, to confirm the deletion.")
        services.registered_model_delete(actor=request.user, name=name)
    except RegistryError as exc:
        return model_refusal(request, name, exc, "manage")
    messages.success(request, f"Deleted the model {name} and its versions.")
    return redirect("ui:model-list")


@ui_form(model_page)
def alias_delete(request: SignedInHttpRequest, name: str, alias: str) -> HttpResponse:
    try:
        services.registered_model_alias_delete(actor=request.user, name=name, alias=alias)
    except RegistryError as exc:
        return model_refusal(request, name, exc, "aliases")
    messages.success(request, f"Deleted the alias @{alias}.")
    return _to_model(name, "aliases")


@ui_form(version_page)
def version_description(request: SignedInHttpRequest, name: str, version: int) -> HttpResponse:
    form = forms.DescriptionForm(request.POST, prefix="d")
    try:
        if not form.is_valid():
            raise RegistryError.invalid("The description is too long.")
        services.model_version_update(
            actor=request.user,
            name=name,
            version=version,
            description=form.cleaned_data["description"],
        )
    except RegistryError as exc:
        return version_refusal(request, name, version, exc, "edit")
    messages.success(request, "Description saved.")
    return to_version(name, version)


@ui_form(version_page)
def version_tag_set(request: SignedInHttpRequest, name: str, version: int) -> HttpResponse:
    form = forms.TagForm(request.POST, prefix="tag")
    try:
        if not form.is_valid():
            raise RegistryError.invalid("Name the tag's key.")
        services.model_version_tag_set(
            actor=request.user,
            name=name,
            version=version,
            key=form.cleaned_data["key"],
            value=form.cleaned_data["value"],
        )
    except RegistryError as exc:
        return version_refusal(request, name, version, exc, "edit")
    messages.success(request, f"Tag {form.cleaned_data['key']} set.")
    return to_version(name, version)


@ui_form(version_page)
def version_tag_delete(request: SignedInHttpRequest, name: str, version: int) -> HttpResponse:
    key = request.POST.get("key", "")
    try:
        services.model_version_tag_delete(actor=request.user, name=name, version=version, key=key)
    except RegistryError as exc:
        return version_refusal(request, name, version, exc, "edit")
    messages.success(request, f"Tag {key} deleted.")
    return to_version(name, version)


@ui_form(version_page)
def version_delete(request: SignedInHttpRequest, name: str, version: int) -> HttpResponse:
    try:
        if request.POST.get("confirm") != "yes":
            raise RegistryError.invalid("Tick the box to confirm the deletion.")
        services.model_version_delete(actor=request.user, name=name, version=version)
    except RegistryError as exc:
        return version_refusal(request, name, version, exc, "edit")
    messages.success(request, f"Deleted version {version} of {name}.")
    return redirect(reverse("ui:model-detail", kwargs={"name": name}) + "#h-versions")
