"""Two more event types: a version deleted, a registered model deleted (choices only; no data
changes)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0002_encrypt_secrets'),
    ]

    operations = [
        migrations.AlterField(
            model_name='webhookevent',
            name='event_type',
            field=models.CharField(choices=[('MODEL_VERSION_CREATED', 'Model Version Created'), ('MODEL_VERSION_TRANSITIONED_STAGE', 'Model Version Transitioned Stage'), ('TRANSITION_REQUEST_CREATED', 'Transition Request Created'), ('COMMENT_CREATED', 'Comment Created'), ('REGISTERED_MODEL_CREATED', 'Registered Model Created'), ('MODEL_VERSION_TAG_SET', 'Model Version Tag Set'), ('MODEL_VERSION_TRANSITIONED_TO_STAGING', 'Model Version Transitioned To Staging'), ('MODEL_VERSION_TRANSITIONED_TO_PRODUCTION', 'Model Version Transitioned To Production'), ('MODEL_VERSION_TRANSITIONED_TO_ARCHIVED', 'Model Version Transitioned To Archived'), ('TRANSITION_REQUEST_TO_STAGING_CREATED', 'Transition Request To Staging Created'), ('TRANSITION_REQUEST_TO_PRODUCTION_CREATED', 'Transition Request To Production Created'), ('TRANSITION_REQUEST_TO_ARCHIVED_CREATED', 'Transition Request To Archived Created'), ('MODEL_VERSION_TAG_DELETED', 'Model Version Tag Deleted'), ('MODEL_VERSION_ALIAS_CREATED', 'Model Version Alias Created'), ('MODEL_VERSION_ALIAS_DELETED', 'Model Version Alias Deleted'), ('TRANSITION_REQUEST_APPROVED', 'Transition Request Approved'), ('TRANSITION_REQUEST_REJECTED', 'Transition Request Rejected'), ('MODEL_VERSION_READY', 'Model Version Ready'), ('MODEL_VERSION_REGISTRATION_FAILED', 'Model Version Registration Failed'), ('WEBHOOK_DISABLED', 'Webhook Disabled'), ('MODEL_VERSION_DELETED', 'Model Version Deleted'), ('REGISTERED_MODEL_DELETED', 'Registered Model Deleted')], max_length=64),
        ),
        migrations.AlterField(
            model_name='webhooksubscription',
            name='event_type',
            field=models.CharField(choices=[('MODEL_VERSION_CREATED', 'Model Version Created'), ('MODEL_VERSION_TRANSITIONED_STAGE', 'Model Version Transitioned Stage'), ('TRANSITION_REQUEST_CREATED', 'Transition Request Created'), ('COMMENT_CREATED', 'Comment Created'), ('REGISTERED_MODEL_CREATED', 'Registered Model Created'), ('MODEL_VERSION_TAG_SET', 'Model Version Tag Set'), ('MODEL_VERSION_TRANSITIONED_TO_STAGING', 'Model Version Transitioned To Staging'), ('MODEL_VERSION_TRANSITIONED_TO_PRODUCTION', 'Model Version Transitioned To Production'), ('MODEL_VERSION_TRANSITIONED_TO_ARCHIVED', 'Model Version Transitioned To Archived'), ('TRANSITION_REQUEST_TO_STAGING_CREATED', 'Transition Request To Staging Created'), ('TRANSITION_REQUEST_TO_PRODUCTION_CREATED', 'Transition Request To Production Created'), ('TRANSITION_REQUEST_TO_ARCHIVED_CREATED', 'Transition Request To Archived Created'), ('MODEL_VERSION_TAG_DELETED', 'Model Version Tag Deleted'), ('MODEL_VERSION_ALIAS_CREATED', 'Model Version Alias Created'), ('MODEL_VERSION_ALIAS_DELETED', 'Model Version Alias Deleted'), ('TRANSITION_REQUEST_APPROVED', 'Transition Request Approved'), ('TRANSITION_REQUEST_REJECTED', 'Transition Request Rejected'), ('MODEL_VERSION_READY', 'Model Version Ready'), ('MODEL_VERSION_REGISTRATION_FAILED', 'Model Version Registration Failed'), ('WEBHOOK_DISABLED', 'Webhook Disabled'), ('MODEL_VERSION_DELETED', 'Model Version Deleted'), ('REGISTERED_MODEL_DELETED', 'Registered Model Deleted')], max_length=64),
        ),
    ]
