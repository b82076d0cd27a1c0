"""WTForms for the login and user-management pages (labels, validation, CSRF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from core.accounts import MIN_PASSWORD_LENGTH
from core.models import Role

ROLE_CHOICES = [SelectChoice(role.value, role.value.capitalize()) for role in Role]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Sign in")


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)], render_kw={"autocomplete": "off"})
    password = PasswordField(
        "Initial password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=1024)],
        description=f"At least {MIN_PASSWORD_LENGTH} characters; tell it to the person by another channel.",
        render_kw={"autocomplete": "new-password"},
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.VIEWER.value)
    # Choices are filled per request from the companies the admin may assign.
    company_id = SelectField("Company", coerce=str, validators=[Optional()])
    submit = SubmitField("Create user")

