from __future__ import annotations

import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

from asyncpress.core.schemas import NON_BLANK, Input, Schema

USERNAME_PATTERN = r"^[\w.\-]+$"
MAX_IMAGE_URL = 2048
_IMAGE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _email(value: str) -> str:
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError("is invalid") from exc
    return checked.normalized.lower()


def _image(value: object) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if (
        isinstance(value, str)
        and len(value.strip()) <= MAX_IMAGE_URL
        and _IMAGE.match(value.strip())
    ):
        return value.strip()
    raise ValueError("must be an http(s) URL of at most 2048 characters")


Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=USERNAME_PATTERN),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=254, pattern=NON_BLANK),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
NewPassword = Annotated[str, StringConstraints(min_length=8, max_length=256)]
GivenPassword = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Bio = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
ImageUrl = Annotated[str | None, BeforeValidator(_image)]


class NewUser(Input):
    username: Username
    email: Email
    password: NewPassword


class LoginUser(Input):
    email: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=254, pattern=NON_BLANK),
    ]
    password: GivenPassword


def _blank_is_unchanged(value: object) -> object:
    return None if value == "" else value


class UserUpdate(Input):
    username: Username | None = None
    email: Email | None = None
    # Front ends send the whole settings form; an empty password field means
    # "keep the current one" (a blank username or e-mail is still refused).
    password: Annotated[NewPassword | None, BeforeValidator(_blank_is_unchanged)] = None
    bio: Bio | None = None
    image: ImageUrl = None


class NewUserRequest(Input):
    user: NewUser


class LoginRequest(Input):
    user: LoginUser


class UpdateUserRequest(Input):
    user: UserUpdate


class UserOut(Schema):
    email: str
    token: str
    username: str
    bio: str
    image: str | None


class UserResponse(Schema):
    user: UserOut
