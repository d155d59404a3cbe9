# The content hash became BLAKE3 (sansio.contentkeys.content_hash): the fields no longer say sha256.
# Rows written before keep their SHA-256 values; no new hash ever equals one, so their outputs are
# made again once, as a change of engine makes them.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0007_output_format_auto"),
    ]

    operations = [
        migrations.RenameField(model_name="contentoutput", old_name="input_sha256", new_name="input_hash"),
        migrations.AlterField(
            model_name="contentoutput",
            name="input_hash",
            field=models.CharField(
                help_text="Of the input's bytes: sansio.contentkeys.content_hash.", max_length=64
            ),
        ),
        migrations.RenameField(model_name="sourceversion", old_name="content_sha256", new_name="content_hash"),
        migrations.AlterField(
            model_name="sourceversion",
            name="content_hash",
            field=models.CharField(help_text="Of the bytes it sent: sansio.contentkeys.content_hash.", max_length=64),
        ),
    ]
